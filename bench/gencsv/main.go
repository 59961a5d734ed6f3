// Command gencsv writes a deterministic CSV of contacts for benchmarks:
// email, first_name, last_name, five attribute columns (company, country,
// plan, seats, signup_date) and tags. The same -seed and -rows always give
// the same bytes.
//
//	go run ./bench/gencsv -rows 1000000 -seed 1 -o contacts.csv
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/funnel-email/funnel/bench/contactgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gencsv:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("gencsv", flag.ContinueOnError)
	rows := fs.Int("rows", 100000, "number of data rows")
	seed := fs.Int64("seed", 1, "generator seed")
	out := fs.String("o", "-", "output file (- for standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rows < 0 {
		return errors.New("-rows must not be negative")
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := contactgen.New(*seed).WriteCSV(bw, *rows); err != nil {
		return err
	}
	return bw.Flush()
}
