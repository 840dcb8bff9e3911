package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browserCheck opens an HTML report in headless Chromium (Debian's
// chromium; .ci/run installs it) and fails the test on a console error, a
// section id missing from the DOM, or no <svg> chart in a <figure
// class="chart">. It saves a screenshot at each window size ("1200,2400")
// in the test's temp folder, also copied to $CPI_SCREENSHOT_DIR when set.
// Without chromium it skips, unless CI=true.
func browserCheck(t *testing.T, html, name string, sections []string, sizes ...string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		switch {
		case fileExists("/usr/bin/chromium"):
			chromium = "/usr/bin/chromium"
		case os.Getenv("CI") == "true":
			t.Fatal("chromium is needed for the browser test in CI")
		default:
			t.Skip("chromium not installed")
		}
	}
	dir := t.TempDir()
	page := filepath.Join(dir, name+".html")
	if err := os.WriteFile(page, []byte(html), 0o640); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + filepath.Join(dir, "profile")}
		cmd := exec.CommandContext(ctx, chromium, append(append(base, args...), "file://"+page)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	dom, logs := run("--enable-logging=stderr", "--v=0", "--dump-dom")
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "Uncaught") || strings.Contains(line, ":CONSOLE(") || strings.Contains(line, "console") && strings.Contains(line, "rror") {
			t.Errorf("console error: %s", line)
		}
	}
	for _, id := range sections {
		if !strings.Contains(dom, `id="`+id+`"`) {
			t.Errorf("DOM lacks section %s", id)
		}
	}
	if !regexp.MustCompile(`<figure class="chart">\s*<svg[^>]*role="img"`).MatchString(dom) {
		t.Error("DOM lacks the chart's <svg>")
	}
	keep := os.Getenv("CPI_SCREENSHOT_DIR")
	for _, size := range sizes {
		png := filepath.Join(dir, name+"-"+strings.Split(size, ",")[0]+".png")
		run("--hide-scrollbars", "--screenshot="+png, "--window-size="+size)
		st, err := os.Stat(png)
		if err != nil || st.Size() < 10000 {
			t.Errorf("screenshot at %s: %v", size, err)
			continue
		}
		t.Logf("screenshot %s", png)
		if keep != "" {
			b, _ := os.ReadFile(png)
			if err := os.WriteFile(filepath.Join(keep, filepath.Base(png)), b, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
