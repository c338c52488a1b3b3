//go:build opencv && !gocv

#include "cascade.h"

#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

static void set_err(char *err, int errlen, const char *msg) {
    if (err == NULL || errlen <= 0) return;
    std::strncpy(err, msg, errlen - 1);
    err[errlen - 1] = 0;
}

sentinel_cascade sentinel_cascade_load(const char *path, char *err, int errlen) {
    try {
        cv::CascadeClassifier *c = new cv::CascadeClassifier();
        if (!c->load(path) || c->empty()) {
            delete c;
            set_err(err, errlen, "OpenCV could not load it");
            return NULL;
        }
        return c;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return NULL;
}

void sentinel_cascade_free(sentinel_cascade c) { delete static_cast<cv::CascadeClassifier *>(c); }

int sentinel_cascade_detect(sentinel_cascade c, const unsigned char *pix, int w, int h, int stride,
                            int max_width, double scale_factor, int min_neighbors, int min_side,
                            int *out, int max_out, double *scale_out, char *err, int errlen) {
    try {
        cv::Mat src(h, w, CV_8UC1, const_cast<unsigned char *>(pix), stride);
        cv::Mat work = src;
        double scale = 1.0;
        if (w > max_width) {
            scale = double(max_width) / w;
            cv::resize(src, work, cv::Size(max_width, int(h * scale + 0.5)), 0, 0, cv::INTER_AREA);
        }
        cv::Mat eq;
        cv::equalizeHist(work, eq);
        std::vector<cv::Rect> found;
        static_cast<cv::CascadeClassifier *>(c)->detectMultiScale(
            eq, found, scale_factor, min_neighbors, 0, cv::Size(min_side, min_side), cv::Size());
        for (size_t i = 0; i < found.size() && int(i) < max_out; i++) {
            out[4 * i] = found[i].x;
            out[4 * i + 1] = found[i].y;
            out[4 * i + 2] = found[i].width;
            out[4 * i + 3] = found[i].height;
        }
        *scale_out = scale;
        return int(found.size());
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return -1;
}
