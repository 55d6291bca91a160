// A program outside the binding's module that imports it, for test.sh's vendor check:
// test.sh puts it in a scratch module whose go.mod replaces wasithreads with the
// checkout, runs `go mod vendor`, builds it with -mod=vendor (default link mode: static)
// and runs it. It runs a tiny module and prints the library version.
package main

import (
	"context"
	"fmt"
	"os"

	"wasithreads"
)

func main() {
	eng, err := wasithreads.NewEngine(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer eng.Close()
	mod, err := eng.LoadModule([]byte(`(module (func (export "_start")))`))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer mod.Close()
	exit, err := mod.Run(context.Background(), nil)
	if err != nil || !exit.Success() {
		fmt.Fprintln(os.Stderr, "run:", exit, err)
		os.Exit(1)
	}
	fmt.Println("vendored wasithreads", wasithreads.Version(), "ran:", exit)
}
