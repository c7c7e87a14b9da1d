package projection

import (
	"context"
	"strconv"
)

// A projection's read model lives in generations. Generation 0 is the
// first; a blue/green rebuild (Projector.Rebuild) builds generation n+1
// beside the active generation n, then switches to it in one transaction
// of the target and drops generation n. Each generation has its own slot
// in the target: its own model (key space or PostgreSQL schema), its own
// checkpoint and its own parked events. Queries read the active one.

// generationSeparator separates a projection's name from its generation
// in a slot name; names may not hold it.
const generationSeparator = 0x01

// slotName is the target's name for generation gen of the projection
// called name: the name itself for generation 0 (so a projection that
// never rebuilt keeps its plain name), name 0x01 gen after that.
func slotName(name string, gen uint64) string {
	if gen == 0 {
		return name
	}
	return name + string(rune(generationSeparator)) + strconv.FormatUint(gen, 10)
}

type replayKey struct{}

// Replaying reports whether the handler called with ctx is replaying
// events the projection has handled before: while it builds the next
// generation of a blue/green rebuild (the active generation handled them
// already), and while it replays the log after a Reset up to where it had
// been. A handler with side effects outside its target (an email, a call)
// skips them when Replaying is true, so a rebuild does not fire them
// twice.
func Replaying(ctx context.Context) bool {
	v, _ := ctx.Value(replayKey{}).(bool)
	return v
}

func withReplaying(ctx context.Context, yes bool) context.Context {
	if !yes {
		return ctx
	}
	return context.WithValue(ctx, replayKey{}, true)
}
