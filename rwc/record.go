package rwc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Recordings are created 0640 in folders 0750: they hold a lab's video.
const (
	recordingPerm = 0o640
	folderPerm    = 0o750
)

// openRecording opens name under the recordings folder for appending, so
// that a rule restored after a restart adds to its recording instead of
// wiping it. os.Root keeps every step inside the folder: a symlink is
// followed only as far as it stays inside, one that leads out is refused.
// Only a regular file is accepted, and opening never blocks: O_NONBLOCK
// makes a FIFO without a reader fail at once rather than hang the rules
// API, and fstat then refuses a FIFO, device or socket that did open.
//
// Errors that are the name's fault wrap ErrInvalid (400); those that are
// the machine's (disk full, read-only, out of descriptors) do not (500).
func (r *RWC) openRecording(name string) (*os.File, error) {
	if err := os.MkdirAll(r.cfg.Recordings, folderPerm); err != nil {
		return nil, fmt.Errorf("recordings folder: %w", err)
	}
	root, err := os.OpenRoot(r.cfg.Recordings)
	if err != nil {
		return nil, fmt.Errorf("recordings folder: %w", err)
	}
	defer root.Close()
	if sub := filepath.Dir(name); sub != "." {
		if err := root.MkdirAll(sub, folderPerm); err != nil {
			return nil, refusedFile(name, err)
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NONBLOCK, recordingPerm)
	if err != nil {
		return nil, refusedFile(name, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: file %q is %s, not a regular file", ErrInvalid, name, kindOf(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// refusedFile explains why the recording name could not be opened.
func refusedFile(name string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EROFS:
			return fmt.Errorf("recording %q: %w", name, err)
		case syscall.ENXIO:
			return fmt.Errorf("%w: file %q is a FIFO or socket, not a regular file", ErrInvalid, name)
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is the recordings folder's business
	}
	return fmt.Errorf("%w: file %q: %v", ErrInvalid, name, err)
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a folder"
	}
	return "not a plain file"
}
