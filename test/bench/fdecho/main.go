// Command fdecho is the start-up baseline of attestd-bench: the least a Go
// program can do in attestd's place. It serves an inherited listening Unix
// socket on fd 3 and answers every line with a fixed JSON-RPC result, until
// it is killed.
package main

import (
	"bufio"
	"net"
	"os"
)

func main() {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				if _, err := br.ReadSlice('\n'); err != nil {
					return
				}
				c.Write([]byte(`{"id":1,"result":{}}` + "\n"))
			}
		}()
	}
}
