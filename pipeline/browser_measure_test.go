package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browserMetrics is what a report measures in Chromium, driven through the
// DevTools protocol: at a true 390 × 844 CSS px mobile viewport
// (Emulation.setDeviceMetricsOverride, so not Chromium's 500 px window
// minimum) and printed to A4 (Page.printToPDF with the page's @page size).
type browserMetrics struct {
	// ScrollWidth is document.scrollingElement.scrollWidth at 390 px.
	ScrollWidth int
	// Viewport is screen.width at the phone size (390 when the
	// emulation took).
	Viewport int
	// Scrollers lists elements that scroll sideways at 390 px (their
	// content wider than their box), by tag, id and class.
	Scrollers []string
	// Charts counts <svg> charts in <figure class="chart">, and
	// MinChartText is the smallest rendered font size of their text at
	// 390 px, in CSS px (0 with no text).
	Charts       int
	MinChartText float64
	// Pages is the A4 PDF's page count.
	Pages int
	// Errors are console errors, uncaught exceptions and log errors.
	Errors []string
	// Text is document.body.innerText at 390 px.
	Text string
	// Sections are the ids of the page's elements (its sections and
	// anchors), in order, and ImgCharts the charts whose <svg> has role="img" (an accessible
	// name for screen readers).
	Sections  []string
	ImgCharts int
}

// chromiumPath finds Chromium, skipping the test without it (failing in CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if fileExists("/usr/bin/chromium") {
		return "/usr/bin/chromium"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is needed for the browser test in CI")
	}
	t.Skip("chromium not installed")
	return ""
}

// measured is what the page script returns.
type measured struct {
	SW        int      `json:"sw"`
	VW        int      `json:"vw"`
	Scrollers []string `json:"scrollers"`
	Charts    int      `json:"charts"`
	MinText   float64  `json:"minText"`
	Text      string   `json:"text"`
	Sections  []string `json:"sections"`
	ImgCharts int      `json:"imgCharts"`
}

func ptrTo[T any](v T) *T { return &v }

// pdfPageRE matches a PDF page object (not the /Pages tree).
var pdfPageRE = regexp.MustCompile(`/Type\s*/Page\b[^s]`)

// browserMeasure opens the HTML in headless Chromium and measures it.
func browserMeasure(t *testing.T, html, name string) browserMetrics {
	t.Helper()
	chromium := chromiumPath(t)
	dir := t.TempDir()
	file := filepath.Join(dir, name+".html")
	if err := os.WriteFile(file, []byte(html), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.Flag("disable-quic", true))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	var m browserMetrics
	var mu sync.Mutex
	// Console messages (console.error, uncaught exceptions, log errors)
	// are read in a goroutine until the measuring is done.
	if err := chromedp.Do(bctx); err != nil { // start the browser and tab
		t.Fatalf("chromium: %v", err)
	}
	cctx, ccancel := context.WithCancel(bctx)
	messages := chromedp.Console(cctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg, err := range messages {
			if err != nil {
				return
			}
			if msg.Type == chromedp.ConsoleError || msg.IsException() {
				mu.Lock()
				m.Errors = append(m.Errors, msg.String())
				mu.Unlock()
			}
		}
	}()
	const measure = `(() => {
	  const out = {sw: document.scrollingElement.scrollWidth, vw: screen.width, scrollers: [], charts: 0, minText: 0, text: document.body.innerText,
	    sections: Array.from(document.querySelectorAll('body [id]'), e => e.id),
	    imgCharts: document.querySelectorAll('figure.chart svg[role="img"]').length};
	  for (const e of document.querySelectorAll('body *')) {
	    const ox = getComputedStyle(e).overflowX;
	    if ((ox === 'auto' || ox === 'scroll') && e.scrollWidth > e.clientWidth + 1)
	      out.scrollers.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined ? '.' + e.className : '') + ' ' + e.scrollWidth + '>' + e.clientWidth);
	  }
	  const svgs = document.querySelectorAll('figure.chart svg');
	  out.charts = svgs.length;
	  let min = 0;
	  for (const s of svgs) for (const t of s.querySelectorAll('text')) {
	    if (!t.textContent.trim()) continue;
	    const ctm = t.getScreenCTM();
	    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b);
	    if (min === 0 || px < min) min = px;
	  }
	  out.minText = min;
	  return out;
	})()`
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulatePortrait),
		chromedp.Navigate("file://"+file),
	); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[measured](measure))
	if err != nil {
		t.Fatalf("chromium: measure: %v", err)
	}
	keep := os.Getenv("CPI_SCREENSHOT_DIR")
	if keep != "" { // the phone's first screen, for a person to look at
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("chromium: screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(keep, name+"-390.png"), png, 0o600); err != nil {
			t.Error(err)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	})); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	pdf, err := chromedp.Run(bctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPrintBackground(),
		func(p *page.PrintToPDFParams) { p.PreferCSSPageSize = ptrTo(true) }))
	if err != nil {
		t.Fatalf("chromium: print: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // let late console messages arrive
	ccancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	m.ScrollWidth, m.Viewport, m.Scrollers, m.Charts, m.MinChartText, m.Text = got.SW, got.VW, got.Scrollers, got.Charts, got.MinText, got.Text
	m.Sections, m.ImgCharts = got.Sections, got.ImgCharts
	m.Pages = len(pdfPageRE.FindAll(pdf, -1))
	if keep != "" {
		if err := os.WriteFile(filepath.Join(keep, name+".pdf"), pdf, 0o600); err != nil {
			t.Error(err)
		}
	}
	return m
}

// browserAssert checks the rules every report keeps: the phone viewport
// took, nothing wider than it and nothing scrolling sideways, no console
// errors, charts at least wantCharts with text of 11 px or more, at most
// maxPages A4 pages (0: no limit).
func browserAssert(t *testing.T, m browserMetrics, wantCharts, maxPages int) {
	t.Helper()
	t.Logf("390 px: scrollWidth %d, %d charts (smallest chart text %.1f px); A4: %d pages", m.ScrollWidth, m.Charts, m.MinChartText, m.Pages)
	if m.Viewport != 390 {
		t.Errorf("viewport %d px, want 390", m.Viewport)
	}
	if m.ScrollWidth > 390 {
		t.Errorf("page %d px wide at 390 px", m.ScrollWidth)
	}
	if len(m.Scrollers) > 0 {
		t.Errorf("elements scroll sideways at 390 px: %s", strings.Join(m.Scrollers, "; "))
	}
	if len(m.Errors) > 0 {
		t.Errorf("console errors: %s", strings.Join(m.Errors, "; "))
	}
	if m.Charts < wantCharts {
		t.Errorf("%d charts, want %d", m.Charts, wantCharts)
	}
	if m.ImgCharts != m.Charts {
		t.Errorf("%d of %d charts have an <svg role=\"img\">", m.ImgCharts, m.Charts)
	}
	if m.Charts > 0 && m.MinChartText < 11-0.05 {
		t.Errorf("chart text %.1f px at 390 px, want at least 11", m.MinChartText)
	}
	if m.Pages == 0 {
		t.Error("the PDF has no pages")
	}
	if maxPages > 0 && m.Pages > maxPages {
		t.Errorf("%d A4 pages, want at most %d", m.Pages, maxPages)
	}
}

// browserSections checks that the page's DOM has an element (a section)
// of each id.
func browserSections(t *testing.T, m browserMetrics, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if !slices.Contains(m.Sections, id) {
			t.Errorf("DOM lacks section %s (has %v)", id, m.Sections)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fmtPages is for logs.
func fmtPages(m browserMetrics) string { return fmt.Sprintf("%d A4 pages", m.Pages) }

// TestBrowserMeasureSees checks the measuring on a page built to fail it:
// a console error, a block 600 px wide, a table scrolling in its box, three
// forced A4 pages and one chart whose text is 8 px and whose svg has no
// role="img", in the one section.
func TestBrowserMeasureSees(t *testing.T) {
	const html = `<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<style>@page { size: A4; } .p { break-after: page; } body { margin: 0; }</style></head><body>
<div class="p" style="width:600px">wide</div>
<div class="p"><div style="overflow-x:auto"><table><tr><td style="white-space:nowrap">` + "a very long line that does not wrap at all in a box of 390 px, not at all, not ever" + `</td></tr></table></div></div>
<section id="only"><figure class="chart"><svg viewBox="0 0 100 20" width="100" height="20"><text x="0" y="10" style="font-size:8px">tiny</text></svg></figure></section>
<script>console.error("boom")</script>
</body></html>`
	m := browserMeasure(t, html, "measure-sees")
	if m.Viewport != 390 {
		t.Errorf("viewport %d, want 390", m.Viewport)
	}
	if m.ScrollWidth != 600 {
		t.Errorf("scrollWidth %d, want 600", m.ScrollWidth)
	}
	if len(m.Scrollers) != 1 {
		t.Errorf("scrollers %q, want the one div", m.Scrollers)
	}
	if m.Pages != 3 {
		t.Errorf("%d pages, want 3", m.Pages)
	}
	if m.Charts != 1 || math.Abs(m.MinChartText-8) > 0.01 {
		t.Errorf("%d charts, text %.2f px; want 1 and 8", m.Charts, m.MinChartText)
	}
	if len(m.Errors) != 1 || !strings.Contains(m.Errors[0], "boom") {
		t.Errorf("console errors %q, want the one", m.Errors)
	}
	if !slices.Equal(m.Sections, []string{"only"}) || m.ImgCharts != 0 {
		t.Errorf("sections %v and %d charts with role=img; want [only] and 0 (its svg has no role)", m.Sections, m.ImgCharts)
	}
}
