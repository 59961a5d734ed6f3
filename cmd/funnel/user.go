package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/funnel-email/funnel/campaign"
)

// userCommand manages the people who sign in to the web UI.
type userCommand struct {
	env
	// stdin gives the password: a terminal is prompted without echo; a
	// pipe is read up to its first newline.
	stdin io.Reader
}

func (c *userCommand) Run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(c.stderr, "Usage: funnel user create --email EMAIL --role admin|marketer|sales [--name NAME] < password")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("user: the only subcommand is create")
	}
	var cfg Config
	fs := newFlagSet(c.env, "user create", "user create --email EMAIL --role ROLE [--name NAME]",
		"Create a user who signs in to the web UI. The password is read from standard input (prompted for on a terminal);\n"+
			"it must be at least 12 characters.")
	cfg.bind(fs, c.getenv, "")
	email := fs.String("email", "", "the user's email, with which they sign in (required)")
	role := fs.String("role", "", "admin, marketer or sales (required)")
	name := fs.String("name", "", "the user's name")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := cfg.validate(needDatabase); err != nil {
		return err
	}
	u := &campaign.User{Email: *email, Name: *name, Role: campaign.Role(*role)}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("user create: %w", err)
	}
	password, err := c.readPassword()
	if err != nil {
		return err
	}
	db, err := openCurrentStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CreateUser(ctx, u, password); err != nil {
		return fmt.Errorf("user create: %w", err)
	}
	fmt.Fprintf(c.stdout, "created user %d: %s (%s)\n", u.ID, u.Email, u.Role)
	return nil
}

// readPassword prompts twice on a terminal, or reads one line from a
// pipe.
func (c *userCommand) readPassword() (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(c.stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}
