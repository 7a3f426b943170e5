{
  "targets": [
    {
      "target_name": "diskless_raw",
      "sources": ["diskless_raw.c", "udp_transfer.c", "tcp_options.c", "crc32c.c", "crc32c_fold.c", "block_io.c", "block_alloc.c", "verified_read.c", "direct_io.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
