package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/sim/camera"
	"github.com/sentinel-edge/sentinel/sim/population"
)

func init() {
	commands = append(commands, command{"faces", "write the pictures, population and camera script of a face-only passage", runFaces})
}

// The person of the face kit: green, a negative test two hours old, three doses.
const (
	faceKitID   = "11010519491231002X"
	faceKitName = "张三"
)

func runFaces(_ context.Context, args []string, e env) error {
	fs := newFlags("faces", "--out DIR [--enrol astronaut|messi]",
		"Writes, from Debian's public test photos (python3-skimage, opencv-doc), what a pillar's\n"+
			"face-only passage needs into DIR: the scenes (face.jpg: a person before a wall, the face\n"+
			"about 100 px; empty.jpg: the wall; coffee.jpg: no face), enrolled.jpg (the enrolment\n"+
			"photo of --enrol: astronaut is the person in face.jpg, messi someone else), people.csv\n"+
			"(one person, green, with face_image enrolled.jpg: for sentinel-sim api --population)\n"+
			"and script.txt (for sentinel-sim camera --script: the wall, the person for 5 s, the\n"+
			"wall, the coffee cup).", e)
	out := fs.String("out", "", "`directory` to write into (required)")
	enrol := fs.String("enrol", "astronaut", "whose photo is enrolled: astronaut or messi")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if *enrol != "astronaut" && *enrol != "messi" {
		return usagef("--enrol must be astronaut or messi, got %q", *enrol)
	}
	if err := camera.WriteKit(*out, *enrol); err != nil {
		return err
	}
	abs, err := filepath.Abs(filepath.Join(*out, camera.KitEnrolled))
	if err != nil {
		return err
	}
	sampled := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	csv := strings.Join(population.HeaderWithFace, ",") + "\n" +
		strings.Join([]string{faceKitID, faceKitName, "green", "negative", sampled, "3", "HC-FACE-KIT", abs}, ",") + "\n"
	script := "# sentinel-sim faces: IMAGE SECONDS\n" + camera.KitEmpty + " 3\n" + camera.KitFace + " 5\n" +
		camera.KitEmpty + " 4\n" + camera.KitNoFace + " 3\n" + camera.KitEmpty + " 2\n"
	for name, body := range map[string]string{"people.csv": csv, "script.txt": script} {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(body), 0o600); err != nil {
			return fmt.Errorf("faces: %w", err)
		}
	}
	fmt.Fprintf(e.stderr, "wrote %s: %s %s %s %s people.csv script.txt (enrolled: %s)\n", *out,
		camera.KitFace, camera.KitEmpty, camera.KitNoFace, camera.KitEnrolled, *enrol)
	return nil
}
