package kruninit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"
)

// Exit codes of the init's own failures, as libkrun reports them.
const (
	// CodeInitFailure: the init could not set the workload up (bad
	// config, bad KRUN_RLIMITS, chdir to the workdir failed, fork failed).
	CodeInitFailure = 125
	// CodeExecFailure: the workload was found but could not be executed.
	CodeExecFailure = 126
	// CodeNotFound: the workload's executable does not exist.
	CodeNotFound = 127
)

// How the init reports the exit code: on a root file system of type
// VirtiofsMagic (statfs f_type), ioctl(fd, ExitCodeIoctl, code) on any of
// its files, as libkrun's init does.
const (
	VirtiofsMagic = 0x65735546
	ExitCodeIoctl = 0x7602 // _IO('v', 2)
)

// ExitCode maps a workload's wait status to the code reported to the host:
// the exit status when it exited, 128 plus the signal number when a signal
// killed it, and CodeInitFailure for anything else (a stopped status is
// never final).
func ExitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return CodeInitFailure
}

// ExecErrorCode maps a failure to start the workload to its exit code:
// CodeNotFound for ENOENT and ENOTDIR (the executable or a directory on
// its path does not exist), CodeExecFailure for everything else (EACCES,
// ENOEXEC, ELOOP...). err is usually a syscall.Errno, possibly wrapped.
func ExecErrorCode(err error) int {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		return CodeNotFound
	}
	return CodeExecFailure
}

// StatFunc returns a file's information, following symbolic links; os.Stat
// is one.
type StatFunc func(name string) (fs.FileInfo, error)

// StatFS adapts an fs.FS whose root stands for "/" (os.DirFS("/"), or an
// fstest.MapFS in tests) to a StatFunc. Relative names are taken from the
// root too.
func StatFS(fsys fs.FS) StatFunc {
	return func(name string) (fs.FileInfo, error) {
		name = strings.TrimPrefix(path.Clean("/"+name), "/")
		if name == "" {
			name = "."
		}
		return fs.Stat(fsys, name)
	}
}

// LookPath resolves file as execvp does with PATH set to pathList: a name
// containing '/' is returned as is (exec decides); otherwise each directory
// of pathList is tried in order (an empty entry is the current directory)
// and the first regular file with an execute bit wins. When none does, the
// error wraps EACCES if some candidate existed but was not executable, else
// ENOENT, so ExecErrorCode gives 126 or 127 as execvp's errno would.
func LookPath(file, pathList string, stat StatFunc) (string, error) {
	if file == "" {
		return "", &fs.PathError{Op: "exec", Path: file, Err: syscall.ENOENT}
	}
	if strings.Contains(file, "/") {
		return file, nil
	}
	denied := false
	for _, dir := range strings.Split(pathList, ":") {
		if dir == "" {
			dir = "."
		}
		cand := dir + "/" + file
		fi, err := stat(cand)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return cand, nil
		}
		denied = true
	}
	errno := syscall.ENOENT
	if denied {
		errno = syscall.EACCES
	}
	return "", &fs.PathError{Op: "exec", Path: file, Err: fmt.Errorf("not found in PATH %q: %w", pathList, errno)}
}
