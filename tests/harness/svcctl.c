/*
 * svcctl.c - command-line face of the test services (svc.h), for tests/run.sh and
 * scripts/demo.sh: `svcctl up DIR` starts MariaDB and the Firestore emulator and prints the
 * env file; `svcctl down DIR` stops them.
 */
#include "tests/harness/svc.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    fserr e = {0};

    if (argc == 3 && strcmp(argv[1], "up") == 0) {
        if (svc_up(argv[2], &e) != 0) {
            fprintf(stderr, "svcctl: %s\n", e.msg);
            return 1;
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "down") == 0) {
        svc_down(argv[2]);
        return 0;
    }
    fprintf(stderr, "usage: svcctl up|down DIR\n");
    return 2;
}
