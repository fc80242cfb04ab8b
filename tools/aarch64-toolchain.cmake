# Cross-compile bitnet.c for aarch64 Linux with Debian's gcc-aarch64-linux-gnu
# and run the test binaries under user-mode QEMU (ctest prefixes every test
# executable with CMAKE_CROSSCOMPILING_EMULATOR).
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=tools/aarch64-toolchain.cmake
#
# Target libraries (cmocka) come from Debian multiarch: libcmocka-dev:arm64
# installs into /usr/lib/aarch64-linux-gnu, which the cross gcc searches by
# default; headers are shared with the host package in /usr/include.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BN_AARCH64_TRIPLE aarch64-linux-gnu CACHE STRING "cross triple")
set(CMAKE_C_COMPILER ${BN_AARCH64_TRIPLE}-gcc)

# Tests run against Debian's multiarch runtime (libc6:arm64, libcmocka0:arm64
# in /lib and /usr/lib/<triple>), hence qemu -L /. The cross gcc's own copy in
# /usr/<triple> is an older glibc under which qemu 7.2 hangs in the first
# pthread_create on this machine.
set(BN_AARCH64_SYSROOT /)                # not cached: an old value must not stick

find_program(BN_QEMU_AARCH64 qemu-aarch64)
if(BN_QEMU_AARCH64)
  # -L: where the emulated dynamic loader finds ld.so and libc. Libraries not
  # found under it (libcmocka from multiarch) fall back to the host path.
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BN_QEMU_AARCH64};-L;${BN_AARCH64_SYSROOT})
endif()

# Find programs on the host, libraries and headers for the target.
set(CMAKE_FIND_ROOT_PATH /usr/${BN_AARCH64_TRIPLE} /usr/lib/${BN_AARCH64_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE ${BN_AARCH64_TRIPLE})
