/*
 * JPEG -> RGB pixels with the system's libjpeg-turbo (TurboJPEG API, SIMD), for serving's decoder
 * (src/serving/inference/jpeg-native.ts). One export:
 *
 *   decodeRgb(jpeg: Uint8Array, out: Uint8Array, width: number, height: number): void
 *
 * decodes into `out` (width x height x 3 bytes, allocated by the caller so that it owns its buffer and
 * can transfer it between threads). The caller has read width and height from the JPEG's frame header;
 * libjpeg's own reading must agree, and `out` must be large enough, or nothing is written. Flags are
 * libjpeg's defaults (accurate integer IDCT, smooth chroma upsampling): the pixels sharp gives. Any error,
 * or a warning about corrupt data, throws: the caller leaves such JPEGs to sharp.
 *
 * Each thread that loads the addon gets its own decompressor (N-API instance data), freed with the thread.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <turbojpeg.h>

typedef struct {
  tjhandle handle;
} Decompressor;

static void free_decompressor(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Decompressor *d = data;
  if (d->handle) tjDestroy(d->handle);
  free(d);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

/*
 * Throws libjpeg's message and replaces the decompressor: after a failed read it is left mid-stream with
 * the bad data's state (the next good JPEG failed with the previous one's error), and errors are rare.
 */
static napi_value fail_and_reset(napi_env env, Decompressor *d) {
  napi_throw_error(env, NULL, tjGetErrorStr2(d->handle));
  tjDestroy(d->handle);
  d->handle = tjInitDecompress();
  return NULL;
}

static int uint8_view(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typed;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  void *raw;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *data = raw;
  return 1;
}

static napi_value decode_rgb(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return fail(env, "decodeRgb(jpeg, out, width, height)");
  uint8_t *src, *dst;
  size_t src_length, dst_length;
  int32_t width, height;
  if (!uint8_view(env, argv[0], &src, &src_length) || !uint8_view(env, argv[1], &dst, &dst_length)) return fail(env, "jpeg and out must be Uint8Arrays");
  if (napi_get_value_int32(env, argv[2], &width) != napi_ok || napi_get_value_int32(env, argv[3], &height) != napi_ok) return fail(env, "width and height must be numbers");
  if (src_length == 0 || src_length > (size_t)0x7fffffff) return fail(env, "unreadable JPEG header");

  Decompressor *d;
  if (napi_get_instance_data(env, (void **)&d) != napi_ok || !d || !d->handle) return fail(env, "no JPEG decompressor");
  int w, h, subsampling, colorspace;
  // libjpeg reads the tables up to the first scan here: a bad one fails with its own message.
  if (tjDecompressHeader3(d->handle, src, (unsigned long)src_length, &w, &h, &subsampling, &colorspace) != 0) return fail_and_reset(env, d);
  if (w != width || h != height) return fail(env, "JPEG size differs from its frame header");
  if (width <= 0 || height <= 0 || dst_length < (size_t)width * (size_t)height * 3) return fail(env, "output buffer too small");
  // A warning (corrupt data libjpeg decoded around) fails here too: refused like an error.
  if (tjDecompress2(d->handle, src, (unsigned long)src_length, dst, width, width * 3, height, TJPF_RGB, 0) != 0) return fail_and_reset(env, d);
  return NULL;
}

NAPI_MODULE_INIT() {
  Decompressor *d = calloc(1, sizeof *d);
  if (!d) return fail(env, "out of memory");
  d->handle = tjInitDecompress();
  if (!d->handle || napi_set_instance_data(env, d, free_decompressor, NULL) != napi_ok) {
    free_decompressor(env, d, NULL);
    return fail(env, "cannot create a JPEG decompressor");
  }
  napi_value fn;
  if (napi_create_function(env, "decodeRgb", NAPI_AUTO_LENGTH, decode_rgb, NULL, &fn) != napi_ok || napi_set_named_property(env, exports, "decodeRgb", fn) != napi_ok) return NULL;
  return exports;
}
