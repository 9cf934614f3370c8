/*
 * stream_state_size.c - not part of any firmware: benchmarks/stream.py
 * compiles it for the board's CPU and reads the two arrays' sizes with nm,
 * so the streaming mode's added state is measured, not written by hand.
 *
 *   sd_probe_detector_bytes: the detector's fields of sd_frontend_t (from
 *                            on_frame to the end of the struct);
 *   sd_probe_decider_bytes:  one sd_stream_decider_t (the smoothing).
 */
#include <stddef.h>

#include "sd_frontend_impl.h"
#include "sd_stream.h"

char sd_probe_detector_bytes[sizeof(struct sd_frontend) - offsetof(struct sd_frontend, on_frame)];
char sd_probe_decider_bytes[sizeof(sd_stream_decider_t)];
