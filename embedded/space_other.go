//go:build !unix

package embedded

// freeBytes cannot tell the free space here: no group is refused for it.
func freeBytes(dir string) (uint64, error) { return 0, errFreeUnknown }
