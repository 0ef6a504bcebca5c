{
  "targets": [
    {
      "target_name": "re2size",
      "sources": ["re2size.cc"],
      "cflags_cc": ["-std=c++17"],
      "libraries": ["-lre2"]
    }
  ]
}
