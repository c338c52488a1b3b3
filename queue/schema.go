package queue

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ApplicationID is written to PRAGMA application_id when the database is created ("SNTQ");
// a database with another application ID is refused as foreign.
const ApplicationID = 0x534E5451

//go:embed schema.sql
var schemaSQL string

type migration struct {
	version int
	sql     string
}

var versionMarker = regexp.MustCompile(`(?m)^-- version (\d+)\s*$`)

// parseMigrations splits schema.sql into its "-- version N" sections, which must be
// numbered 1, 2, 3, ... in order.
func parseMigrations(src string) ([]migration, error) {
	locs := versionMarker.FindAllStringSubmatchIndex(src, -1)
	var ms []migration
	for i, loc := range locs {
		v, err := strconv.Atoi(src[loc[2]:loc[3]])
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("queue: schema.sql: section %d is numbered %q, want %d", i+1, src[loc[2]:loc[3]], i+1)
		}
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		ms = append(ms, migration{version: v, sql: strings.TrimSpace(src[loc[1]:end])})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("queue: schema.sql has no version sections")
	}
	return ms, nil
}

var migrations = func() []migration {
	ms, err := parseMigrations(schemaSQL)
	if err != nil {
		panic(err) // the embedded file is part of the program: a bad one is a build defect
	}
	return ms
}()

// schemaVersion is the version this program writes.
func schemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings a database that is ours (or empty) to schemaVersion, one transaction per
// step. Each step re-reads user_version inside its transaction, so running it twice, or from
// two processes, is harmless.
func migrate(ctx context.Context, db *sql.DB) error {
	for _, m := range migrations {
		if err := migrateStep(ctx, db, m); err != nil {
			return fmt.Errorf("queue: migrate to schema version %d: %w", m.version, err)
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, m migration) (err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see dsn)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur, app int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return err
	}
	if cur >= m.version {
		return tx.Rollback()
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil {
		return err
	}
	if app != ApplicationID {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", ApplicationID)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return err
	}
	return tx.Commit()
}
