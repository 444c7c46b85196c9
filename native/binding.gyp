{
  "targets": [
    {
      "target_name": "tapestry_native",
      "sources": [
        "src/addon.c",
        "src/rx.c",
        "src/errors.c",
        "src/tap.c",
        "src/af_packet.c",
        "src/csum.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O3"],
      "cflags_c": ["-std=c11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
    }
  ]
}
