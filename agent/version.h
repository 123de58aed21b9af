/* version.h - firesync's version, one place. */
#ifndef FIRESYNC_VERSION_H
#define FIRESYNC_VERSION_H
#define FIRESYNC_VERSION "0.1.0"
#endif
