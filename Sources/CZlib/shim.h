// System-library shim: zlib (Debian: zlib1g-dev), for gzipped data files.
#include <zlib.h>
