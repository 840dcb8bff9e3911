package pipeline

import (
	"regexp"
	"testing"
)

func TestZZDebug(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	page := reportStudyTestRender(t, env, dir)
	flow := reportStudyTestSection(t, page, "flow")
	t.Log(regexp.MustCompile(`\s+`).ReplaceAllString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(flow, " "), " "))
}
