package pipeline
import ("testing";"os")
func TestZZTmpWrite(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	os.WriteFile("/tmp/shots/study.html", []byte(reportStudyTestRender(t, env, dir)), 0o644)
}
