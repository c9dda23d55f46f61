/*
 * data_source.c: the list of data sources, and which one a --data value names; see
 * data_source.h. The IDX directory comes last: it takes every value the others refuse.
 */
#include "data_source.h"

/* The sources in the order they are asked, one line each: X(name) for vae_data_<name>. */
#define DATA_SOURCES(X) \
    X(toy)              \
    X(idx)

#define DECLARE(name) extern const vae_data_source vae_data_##name;
DATA_SOURCES(DECLARE)
#undef DECLARE

#define ENTRY(name) &vae_data_##name,
static const vae_data_source *const sources[] = {DATA_SOURCES(ENTRY)};
#undef ENTRY

const vae_data_source *vae_data_source_of(const char *data)
{
    const int n = (int)(sizeof sources / sizeof sources[0]);
    for (int i = 0; i < n - 1; i++)
        if (sources[i]->selects(data))
            return sources[i];
    return sources[n - 1];
}
