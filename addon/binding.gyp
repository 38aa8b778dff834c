{
  "targets": [
    {
      "target_name": "l7mesh_bpf",
      "sources": [
        "src/binding.cc",
        "src/errors.cc",
        "src/object.cc",
        "src/map.cc",
        "src/ringbuf.cc",
        "src/links.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "libraries": ["-lbpf"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
