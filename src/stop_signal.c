/*
 * stop_signal.c: SIGINT and SIGTERM for `cuvae train`, taken by one thread with
 * sigwait, never by a handler; see stop_signal.h for why and for the phases.
 */
#define _GNU_SOURCE
#include "stop_signal.h"

#include "vae_util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { PHASE_SETUP, PHASE_ARMED, PHASE_DONE };

volatile sig_atomic_t vae_stop_signal;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* phase and vae_stop_signal change under it */
static int phase;
static const char *who = "cuvae";
static sigset_t stop_set;

static const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

/* A line on stderr without stdio (the main thread may hold stderr's lock), then _exit. */
static void exit_now(int sig, const char *why)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s: %s %s; exit %d\n", who, signal_name(sig), why, 128 + sig);
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
        n = 0; /* nothing more to do about a failing stderr */
    _exit(128 + sig);
}

static void *signal_thread(void *arg)
{
    for (;;) {
        int sig;
        if (sigwait(&stop_set, &sig) != 0)
            continue;
        pthread_mutex_lock(&lock);
        if (phase == PHASE_SETUP)
            exit_now(sig, "before training began: nothing was written");
        if (phase == PHASE_DONE)
            exit_now(sig, "after the run had written its files");
        if (vae_stop_signal)
            exit_now(sig, "a second time: stopped at once; the last checkpoint is whole");
        __atomic_store_n(&vae_stop_signal, sig, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int vae_stop_signals_start(const char *command)
{
    who = command;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    int err = pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    if (err)
        return vae_set_error("blocking SIGINT and SIGTERM failed: %s", strerror(err));
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The default stack size, not a small one: a thread's stack also holds the static TLS of
     * every loaded library, and cuBLASLt's alone is 92 KiB, so a 64 KiB stack made
     * pthread_create fail with EINVAL in every build linked with cuBLAS. */
    err = pthread_create(&t, &attr, signal_thread, NULL);
    pthread_attr_destroy(&attr);
    if (err)
        return vae_set_error("starting the signal thread failed: %s", strerror(err));
    return 0;
}

void vae_stop_signals_arm(void)
{
    pthread_mutex_lock(&lock);
    phase = PHASE_ARMED;
    pthread_mutex_unlock(&lock);
}

int vae_stop_signals_finish(int rc)
{
    pthread_mutex_lock(&lock);
    int sig = __atomic_load_n(&vae_stop_signal, __ATOMIC_SEQ_CST);
    if (phase == PHASE_ARMED && sig && rc == 0) {
        rc = 128 + sig;
        fprintf(stderr, "%s: %s as the run ended; its files are written; exit %d\n", who, signal_name(sig), rc);
    }
    phase = PHASE_DONE;
    pthread_mutex_unlock(&lock);
    return rc;
}
