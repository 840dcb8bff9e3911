package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfile begins the CPU profile that the hidden --cpuprofile flag asks
// for; the benchmark notes of issue 7 were measured with it.
func (g *globals) startProfile() error {
	if g.trace != "" {
		f, err := os.OpenFile(g.trace, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("execution trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return fmt.Errorf("execution trace: %w", err)
		}
		g.traceFile = f
	}
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
	if g.traceFile != nil {
		trace.Stop()
		err := g.traceFile.Close()
		g.traceFile = nil
		if err != nil {
			return fmt.Errorf("execution trace: %w", err)
		}
	}
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
