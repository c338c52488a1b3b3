// A thin C interface to OpenCV's CascadeClassifier for cascade_cv.go. Every entry point
// catches C++ exceptions and reports them in err, so a bad file or frame never aborts.
#ifndef SENTINEL_CASCADE_H
#define SENTINEL_CASCADE_H
#ifdef __cplusplus
extern "C" {
#endif

typedef void *sentinel_cascade;

// sentinel_cascade_load loads a cascade file; NULL with err set when it cannot.
sentinel_cascade sentinel_cascade_load(const char *path, char *err, int errlen);
void sentinel_cascade_free(sentinel_cascade c);

// sentinel_cascade_detect finds faces in an 8-bit gray picture (w×h, rows stride bytes
// apart), scaled down to max_width when wider, histogram-equalised. It writes up to max_out
// boxes (x, y, w, h, in the scaled picture) into out, *scale_out the scale used, and returns
// the number of boxes found (it may exceed max_out), or -1 with err set.
int sentinel_cascade_detect(sentinel_cascade c, const unsigned char *pix, int w, int h, int stride,
                            int max_width, double scale_factor, int min_neighbors, int min_side,
                            int *out, int max_out, double *scale_out, char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
