//go:build !unix

package execute

import (
	"os"
	"os/exec"
)

// setProcessGroup is a no-op where process groups are not supported.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills only the process itself where process groups are not supported.
func killProcessGroup(p *os.Process) error { return p.Kill() }
