package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfile begins the CPU profile that the hidden --cpuprofile flag asks
// for; the benchmark notes of issue 7 were measured with it.
func (g *globals) startProfile() error {
	if g.profile == "" {
		return nil
	}
	f, err := os.Create(g.profile)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	g.profileFile = f
	return nil
}

// stopProfile ends the CPU profile, if one was started, and writes the
// allocation profile --memprofile asks for.
func (g *globals) stopProfile() error {
	if g.memProfile != "" {
		runtime.GC() // the profile is as of the last collection, which GOGC=off may have skipped
		f, err := os.Create(g.memProfile)
		if err != nil {
			return fmt.Errorf("allocation profile: %w", err)
		}
		werr := pprof.Lookup("allocs").WriteTo(f, 0)
		if err := f.Close(); werr == nil {
			werr = err
		}
		if werr != nil {
			return fmt.Errorf("allocation profile: %w", werr)
		}
	}
	if g.profileFile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := g.profileFile.Close()
	g.profileFile = nil
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	return nil
}
