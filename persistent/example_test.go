package persistent_test

import (
	"context"
	"fmt"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/persistent"
)

// Two workers share the events of a stream; one cannot handle an event
// and parks it, and a replay brings it back once the fault is fixed.
func Example() {
	ctx := context.Background()
	store := memory.New(memory.Options{Limits: annals.Limits{AllowSystemStreams: true}})
	defer store.Close()
	for _, typ := range []string{"InvoiceRaised", "InvoiceRaised", "InvoiceVoided"} {
		store.Append(ctx, "invoices", annals.Any, annals.EventData{Type: typ, Data: []byte(`{}`)})
	}

	groups, err := persistent.Open(ctx, store, persistent.Options{})
	if err != nil {
		panic(err)
	}
	defer groups.Close()
	settings := persistent.DefaultSettings()
	settings.StartFrom = annals.Start
	if err := groups.Create(ctx, persistent.Config{Stream: "invoices", Group: "mailer", Settings: settings}); err != nil {
		panic(err)
	}
	a, _ := groups.Connect("invoices", "mailer", persistent.ConnectOptions{BufferSize: 1})
	b, _ := groups.Connect("invoices", "mailer", persistent.ConnectOptions{BufferSize: 1})

	templates := map[string]bool{"InvoiceRaised": true}
	handle := func(name string, c *persistent.Consumer) {
		d, err := c.Next(ctx)
		if err != nil {
			panic(err)
		}
		if !templates[d.Event.Type] {
			fmt.Printf("%s parks %s@%d\n", name, d.Event.Type, d.Event.Revision)
			c.Nack(persistent.NackPark, "no template for voided invoices", d.Event.ID)
			return
		}
		fmt.Printf("%s handles %s@%d\n", name, d.Event.Type, d.Event.Revision)
		c.Ack(d.Event.ID)
	}
	handle("a", a) // round robin: a, b, a
	handle("b", b)
	handle("a", a)

	// Parking writes a link to the group's parked stream in the
	// background; wait for it, fix the fault, replay.
	for info, _ := groups.Info("invoices", "mailer"); info.Parked == 0; info, _ = groups.Info("invoices", "mailer") {
		time.Sleep(10 * time.Millisecond)
	}
	templates["InvoiceVoided"] = true
	if err := groups.ReplayParked(ctx, "invoices", "mailer", 0); err != nil {
		panic(err)
	}
	handle("b", b)
	// Output:
	// a handles InvoiceRaised@0
	// b handles InvoiceRaised@1
	// a parks InvoiceVoided@2
	// b handles InvoiceVoided@2
}
