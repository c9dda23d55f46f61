/*
 * cmd_report.c: `cuvae report DIR`: write DIR/report.html again from what the
 * run directory holds now (after a resume, a new picture, a copied directory).
 * `cuvae train` writes it at the end of each run through the same function.
 *
 * Not here: the page itself (report.c).
 */
#include "cli.h"
#include "report.h"

#include <stdio.h>
#include <string.h>

static void help(void)
{
    printf("usage: cuvae report DIR\n\n"
           "Write DIR/report.html, one self-contained page for a browser, from the run directory DIR:\n"
           "the configuration (provenance.txt, the metadata of model.safetensors), the final metrics\n"
           "and every epoch's (metrics.csv), the loss curves and every picture (*.png, *.svg) in DIR.\n"
           "It opens from disk with no server and no network; pictures are linked by relative path.\n\n"
           "  -h, --help          this help\n");
}

int vae_cmd_report(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help();
        return 0;
    }
    if (argc != 2)
        return vae_cli_usage_error("report", argc < 2 ? "the run directory DIR is required"
                                                      : "one run directory DIR, got %d arguments",
                                   argc - 1);
    if (argv[1][0] == '-' || argv[1][0] == 0)
        return vae_cli_usage_error("report", "'%s' is not a run directory (usage: cuvae report DIR)", argv[1]);
    if (vae_report_write(argv[1]))
        return vae_cli_fail();
    fprintf(stderr, "wrote %s/report.html\n", argv[1]);
    return 0;
}
