package main

import (
	"fmt"
	"io"

	"github.com/annals/annals/server"
)

// version is the product's version: what this build of Annals is. It is
// not server.ServerVersion, the KurrentDB version the server advertises to
// clients so that they enable the features it implements.
const version = "0.1.0"

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "annals %s (speaks the KurrentDB gRPC protocol as server version %s)\n", version, server.ServerVersion)
}
