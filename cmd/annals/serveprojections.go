package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/products"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The projections `annals serve --projection` can run. A server of one's
// own with one's own projections is a Go program: server.Options.Projections.
var builtinProjections = []string{products.ListOfProductsName}

// servedProjections are the projectors a server runs, and what closes
// their targets.
type servedProjections struct {
	registry *projection.Registry
	// logger gets each projector's failures and errors as they happen.
	logger  *slog.Logger
	stops   []func() error
	closers []func()
}

// projectionNames reads --projection: built-in names, each once.
func projectionNames(flag string) ([]string, error) {
	if flag == "" {
		return nil, nil
	}
	names := strings.Split(flag, ",")
	for i, name := range names {
		switch {
		case !slices.Contains(builtinProjections, name):
			return nil, usagef("--projection %q: the built-in projections are %s", name, strings.Join(builtinProjections, ", "))
		case slices.Contains(names[:i], name):
			return nil, usagef("--projection names %q twice", name)
		}
	}
	return names, nil
}

// startProjections starts the named built-in projections over store, with
// their read models beside it: in PostgreSQL (the store's database and
// schema) when the store is there, else in a pebble target in readModels.
func startProjections(ctx context.Context, e *env, store annals.Store, names []string, readModels string, logger *slog.Logger) (*servedProjections, error) {
	sp := &servedProjections{registry: projection.NewRegistry(), logger: logger}
	if len(names) == 0 {
		return sp, nil
	}
	var err error
	if e.postgres != "" {
		err = sp.startPostgres(ctx, e, store)
	} else {
		err = sp.startPebble(ctx, store, readModels)
	}
	if err != nil {
		sp.stop(logger)
		return nil, err
	}
	logger.Info("projections started", "names", names)
	return sp, nil
}

func (sp *servedProjections) startPebble(ctx context.Context, store annals.Store, dir string) error {
	target, err := projection.OpenPebble(dir)
	if err != nil {
		return fmt.Errorf("opening the read models in %s: %w", dir, err)
	}
	sp.closers = append(sp.closers, func() { target.Close() })
	return start(ctx, sp, store, target, products.ListOfProductsKV())
}

func (sp *servedProjections) startPostgres(ctx context.Context, e *env, store annals.Store) error {
	pool, err := pgxpool.New(ctx, e.postgres)
	if err != nil {
		return err
	}
	sp.closers = append(sp.closers, pool.Close)
	octx, cancel := context.WithTimeout(ctx, postgresOpenTimeout)
	defer cancel()
	target, err := projection.NewPostgres(octx, pool, e.schema)
	if err != nil {
		return fmt.Errorf("opening the read models in PostgreSQL (within %v): %w", postgresOpenTimeout, err)
	}
	return start(ctx, sp, store, target, products.ListOfProductsPostgres())
}

func start[M any](ctx context.Context, sp *servedProjections, store annals.Store, target projection.Target[M], p projection.Projection[M]) error {
	pr, err := projection.New(store, target, p, projection.Options{Logger: sp.logger})
	if err != nil {
		return err
	}
	if err := sp.registry.Add(pr); err != nil {
		return err
	}
	if err := pr.Start(ctx); err != nil {
		return err
	}
	sp.stops = append(sp.stops, pr.Stop)
	return nil
}

// stop stops the projectors, then closes their targets.
func (sp *servedProjections) stop(logger *slog.Logger) {
	var errs []error
	for _, stop := range sp.stops {
		errs = append(errs, stop())
	}
	if err := errors.Join(errs...); err != nil {
		// Logged when it happened too; this says it was never retried.
		logger.Error("a projection was still failed at shutdown", "err", err)
	}
	for _, c := range slices.Backward(sp.closers) {
		c()
	}
}
