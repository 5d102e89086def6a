#!/usr/bin/env bash
# Installs the system packages hashcore needs when they are missing and we are root;
# otherwise names them in one line. Debian/Ubuntu package names.
set -u
missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  2>/dev/null || missing+=(python3-dev)
# OpenCL on the CPU (PoCL) when no OpenCL platform is installed at all.
if [ -z "$(ls /etc/OpenCL/vendors/*.icd 2>/dev/null)" ]; then
  missing+=(ocl-icd-libopencl1 pocl-opencl-icd)
fi
# The dashboard's browser test: headless Chromium and its driver.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "hashcore needs these system packages; install them as root: apt-get install ${missing[*]}" >&2
fi
exit 0
