package darwin

import (
	"net"
	"slices"
	"syscall"
	"unsafe"
)

func activateSocket(name string) ([]net.Listener, error) {
	if err := loadSystem(); err != nil {
		return nil, err
	}
	var (
		fds *int32
		cnt uint64
	)
	// int launch_activate_socket(const char *name, int **fds, size_t *cnt);
	// It returns 0 or an errno value; on success *fds is malloc'd and ours to free.
	if e := launchActivateSocket(name, &fds, &cnt); e != 0 {
		return nil, &ActivateError{Name: name, Errno: syscall.Errno(e)}
	}
	var list []int32
	if fds != nil {
		list = slices.Clone(unsafe.Slice(fds, cnt))
		// void free(void *ptr);
		libcFree(unsafe.Pointer(fds))
	}
	return listenersFromFDs(name, list)
}
