{
  "targets": [
    {
      "target_name": "turbojpeg",
      "sources": ["turbojpeg.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-lturbojpeg"]
    }
  ]
}
