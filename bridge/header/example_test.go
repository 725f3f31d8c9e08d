package header_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

func ExampleEncode() {
	s, err := header.Encode(header.Value{
		Kind:        header.KindDev,
		Token:       []byte("tok"),
		GeneratedAt: time.UnixMilli(100),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	// Output: v1.haFro2RldqF0xAN0b2uhZ2ShYqChbaA
}

func ExampleDecode() {
	v, err := header.Decode("v1.haFro2RldqF0xAN0b2uhZ2ShYqChbaA")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %q %s\n", v.Kind, v.Token, v.GeneratedAt.Format(time.RFC3339Nano))

	_, err = header.Decode("v2.haFro2RldqF0xAN0b2uhZ2ShYqChbaA")
	fmt.Println(errors.Is(err, header.ErrPrefix), err)
	// Output:
	// dev "tok" 1970-01-01T00:00:00.1Z
	// true decode header: header value does not start with "v1."
}

func ExampleParseEnvelope() {
	for _, s := range []string{
		`{"v":1,"s":0,"t":"v1.haFro2RldqF0xAN0b2uhZ2ShYqChbaA"}`,
		`{"v":1,"s":1}`,
	} {
		e, err := header.ParseEnvelope(s)
		if err != nil {
			panic(err)
		}
		if e.Status != header.StatusOK {
			fmt.Println("no token:", e.Status)
			continue
		}
		v, err := header.Decode(e.Token)
		if err != nil {
			panic(err)
		}
		fmt.Println("token kind:", v.Kind)
	}
	// Output:
	// token kind: dev
	// no token: timeout
}
