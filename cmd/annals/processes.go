package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/annals/annals/process"
)

const processesNotes = `  Watches and controls the process managers that run on a server's store
  (package process), through its HTTP endpoint (/api/processes); --server
  as for annals projections. Actions:
    list (the default)    a table: manager, started, finished, active,
                          failed, checkpoint
    show NAME             the manager, its instances not finished, and
                          those that failed
    instance NAME ID      one instance and its history
    retry NAME ID         run a failed instance again (its run takes it)
    abandon NAME ID       give up an instance (--reason says why), or take
                          a failed one off the list
  --json prints the server's JSON answer instead, on one line.
`

// processWords are the words each action takes after it.
var processWords = map[string]int{"list": 0, "show": 1, "instance": 2, "retry": 2, "abandon": 2}

func setupProcesses(fs *flag.FlagSet) runFunc {
	serverURL := fs.String("server", defaultProjectionsServer, "the server's `URL` (kurrentdb://host:port?tls=false, or http(s)://host:port)")
	jsonOut := fs.Bool("json", false, "print the server's JSON answer instead of a table")
	reason := fs.String("reason", "", "with abandon, why (recorded as the instance's error)")

	return func(ctx context.Context, e *env) error {
		words, err := takeWords(fs)
		if errors.Is(err, flag.ErrHelp) {
			printCommand(e.out.w, lookup("processes"))
			return nil
		}
		if err != nil {
			return usagef("%v", err)
		}
		action := "list"
		if len(words) > 0 {
			action, words = words[0], words[1:]
		}
		n, ok := processWords[action]
		switch {
		case !ok:
			return usagef("unknown action %q: list, show, instance, retry or abandon", action)
		case len(words) != n:
			return usagef("%s takes %d words after it (NAME%s), not %d", action, n, map[bool]string{true: " ID"}[n == 2], len(words))
		case isSet(fs, "reason") && action != "abandon":
			return usagef("--reason goes with abandon")
		}
		c, err := newProjectionsClient(*serverURL)
		if err != nil {
			return usagef("--server: %v", err)
		}
		c.prefix, c.what = process.HTTPPath, "process managers"
		path := ""
		for _, w := range words {
			path += "/" + url.PathEscape(w)
		}
		path = strings.TrimPrefix(path, "/")
		return runProcessAction(ctx, e, c, action, path, *reason, *jsonOut)
	}
}

func runProcessAction(ctx context.Context, e *env, c *projectionsClient, action, path, reason string, jsonOut bool) error {
	method := http.MethodGet
	if action == "retry" || action == "abandon" {
		method, path = http.MethodPost, path+"/"+action
		if reason != "" {
			path += "?reason=" + url.QueryEscape(reason)
		}
	}
	var answer map[string]any
	var err error
	switch action {
	case "list":
		var list struct{ Managers []process.Report }
		if err = c.do(ctx, method, path, &list); err == nil && !jsonOut {
			return printReports(e, list.Managers)
		}
		answer = map[string]any{"managers": list.Managers}
	case "show":
		var rep process.Report
		if err = c.do(ctx, method, path, &rep); err == nil && !jsonOut {
			return printReport(e, rep)
		}
		answer = map[string]any{"report": rep}
	case "instance":
		var in struct {
			Instance process.InstanceStatus
			History  []process.Entry
		}
		if err = c.do(ctx, method, path, &in); err == nil && !jsonOut {
			return printInstance(e, in.Instance, in.History)
		}
		answer = map[string]any{"instance": in.Instance, "history": in.History}
	default:
		if err = c.do(ctx, method, path, &answer); err == nil && !jsonOut {
			fmt.Fprintf(e.out.w, "queued: %s of %s (the manager's run takes it)\n", action, strings.TrimSuffix(path, "/"+action))
			return nil
		}
	}
	if err != nil {
		return err
	}
	return e.out.enc.Encode(answer)
}

func printReports(e *env, reps []process.Report) error {
	tw := tabwriter.NewWriter(e.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MANAGER\tSTARTED\tFINISHED\tACTIVE\tFAILED\tCHECKPOINT\tHELD BY")
	for _, r := range reps {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Manager, r.Started, r.Finished, len(r.Active), len(r.Failed), r.Checkpoint,
			cmp.Or(oneLine(r.Holder, lastErrorColumn), "-"))
	}
	return tw.Flush()
}

func printReport(e *env, r process.Report) error {
	if err := printReports(e, []process.Report{r}); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nINSTANCE\tSTATUS\tSTEPS\tDONE\tUNDONE\tABANDONED\tRETRYING\tUPDATED\tERROR")
	for _, st := range r.Active {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", oneLine(st.ID, lastErrorColumn), st.Status, st.Steps, st.Done,
			st.Undone, st.Abandoned, st.Retrying, st.Updated.UTC().Format(time.RFC3339), oneLine(cmp.Or(st.Error, st.LastError), lastErrorColumn))
	}
	for _, st := range r.Failed { // listed from their end records: annals processes instance has their steps
		fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t%s\t%s\n", oneLine(st.ID, lastErrorColumn), st.Status,
			st.Updated.UTC().Format(time.RFC3339), oneLine(st.Error, lastErrorColumn))
	}
	return tw.Flush()
}

func printInstance(e *env, st process.InstanceStatus, history []process.Entry) error {
	fmt.Fprintf(e.out.w, "%s: %s, %d steps: %d done, %d undone, %d abandoned, %d retrying\n",
		oneLine(st.ID, lastErrorColumn), st.Status, st.Steps, st.Done, st.Undone, st.Abandoned, st.Retrying)
	if st.Error != "" {
		fmt.Fprintf(e.out.w, "error: %s\n", oneLine(st.Error, 4*lastErrorColumn))
	}
	for _, t := range st.Timers {
		fmt.Fprintf(e.out.w, "timer %s at %s\n", oneLine(t.Name, lastErrorColumn), t.At.UTC().Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(e.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nREVISION\tRECORDED\tRECORD\tSTEP\tERROR")
	for _, h := range history {
		step := ""
		if h.Kind != "Decided" && h.Kind != "Failed" && h.Kind != "Done" && h.Kind != "Retried" {
			step = fmt.Sprint(h.Step)
		}
		if h.Undo {
			step += " (undo)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Revision, h.Recorded.UTC().Format(time.RFC3339), h.Kind, step, oneLine(h.Error, lastErrorColumn))
	}
	return tw.Flush()
}
