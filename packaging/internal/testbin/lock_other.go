//go:build !unix

package testbin

func lockBuilds() func() { return func() {} }
