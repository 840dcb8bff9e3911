package pipeline

// RunAll is every stage of `cpi run`, in order: ingest whatever is in the
// inbox, then the stages that read what it wrote.
func RunAll(inbox string) []Stage {
	return []Stage{Ingest([]string{inbox})}
}
