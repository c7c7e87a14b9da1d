package seats

import "flag"

// Flags defines the demo's flags on fs, filling cfg. The example and
// `annals demo seats` share them.
func Flags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.Conference, "conference", "", "the conference `id`: processes with the same one book the same seats (default: a new one)")
	fs.IntVar(&cfg.Seats, "seats", DefaultSeats, "the conference's `capacity`")
	fs.IntVar(&cfg.Clients, "clients", DefaultClients, "concurrent `clients`")
	fs.IntVar(&cfg.Reservations, "reservations", 0, "stop after `N` reservation attempts over all clients (default: run for --duration)")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "how long to run without --reservations")
	fs.IntVar(&cfg.CancelPercent, "cancel-percent", DefaultCancelPercent, "chance in `percent` that a client cancels a reservation of its own")
	fs.IntVar(&cfg.MaxAttempts, "max-attempts", DefaultMaxAttempts, "decisions per command before it gives up on conflicts")
	fs.Uint64Var(&cfg.SnapshotEvery, "snapshot-every", 0, "snapshot the conference every `N` events (default: no snapshots)")
}
