package main

import (
	"context"
	"fmt"
	"net"

	"github.com/sentinel-edge/sentinel/sim/camera"
	"github.com/sentinel-edge/sentinel/sim/loopback"
)

func init() {
	commands = append(commands, command{"camera", "act as an IP camera serving MJPEG from a script of images", runCamera})
}

func runCamera(ctx context.Context, args []string, e env) error {
	fs := newFlags("camera", "--script FILE [--listen ADDR] [flags]",
		"Acts as an IP camera: serves MJPEG (multipart/x-mixed-replace) at /stream and the\n"+
			"current frame at /snapshot.jpg, playing a script; /redirect answers 302 to /stream\n"+
			"(a camera URL that redirects). The script's clock starts at the first request.\n"+
			"Prints \"listening on HOST:PORT\" to stderr once ready; --listen 127.0.0.1:0\n"+
			"picks a free port. One step a line (# comments):\n"+
			"  IMAGE SECONDS      serve IMAGE (JPEG or PNG, relative to the script) for SECONDS\n"+
			"                     (5, 0.5 or a duration such as 500ms)\n"+
			"  !stall SECONDS     keep the connections open and send nothing\n"+
			"  !garbage SECONDS   send bytes that hold no boundary\n"+
			"  !drop              cut every open /stream connection\n"+
			"  !corrupt           send one part that is not a JPEG\n"+
			"  !huge BYTES        send one part of BYTES bytes\n"+
			"At the end the last image stays (or the script starts again, --loop).", e)
	listen := fs.String("listen", "127.0.0.1:8081", "`address` to listen on; loopback only unless --allow-remote")
	script := fs.String("script", "", "script `file` (required)")
	fps := fs.Int("fps", 10, "frames per second on each stream connection (1 to 60)")
	boundary := fs.String("boundary", "sentinelframe", "the multipart `boundary`")
	noLength := fs.Bool("no-length", false, "send parts without Content-Length")
	loop := fs.Bool("loop", false, "play the script again from the start when it ends")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --listen address")
	level := logLevelFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	switch {
	case *script == "":
		return usagef("--script is required")
	case *fps < 1 || *fps > 60:
		return usagef("--fps must be 1 to 60, got %d", *fps)
	case *boundary == "" || len(*boundary) > 70:
		return usagef("--boundary must be 1 to 70 characters")
	}
	if !*allowRemote {
		if err := loopback.Check(*listen); err != nil {
			return usagef("--listen %q is not a loopback address; add --allow-remote to serve other machines", *listen)
		}
	}
	log, err := newLogger(*level, e, "camera")
	if err != nil {
		return err
	}
	sc, err := camera.LoadScript(*script)
	if err != nil {
		return err
	}
	srv := camera.NewServer(sc, camera.Options{FPS: *fps, Boundary: *boundary, NoLength: *noLength, Loop: *loop, Logger: log})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("script loaded", "file", *script, "steps", len(sc.Steps), "length", sc.Total())
	fmt.Fprintf(e.stderr, "listening on %s\n", ln.Addr())
	return srv.Serve(ctx, ln)
}
