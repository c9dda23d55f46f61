/*
 * stop_signal.h: how `cuvae train` takes SIGINT and SIGTERM without ever
 * running a signal handler on a computing thread.
 *
 * oneDNN's GEMM kernels (dnnl_sgemm) point the stack pointer into the heap
 * while they run, so a handler that runs on such a thread writes over heap
 * memory (issue 19: malloc aborts and lost interrupt checkpoints). So no
 * handler is installed at all: vae_stop_signals_start blocks both signals in
 * the calling thread before any other thread exists (OpenMP's threads, made
 * later, inherit the mask) and starts one thread that takes them with
 * sigwait. That thread acts by the run's phase:
 *
 *   SETUP   (from start until vae_stop_signals_arm): nothing is written yet,
 *           so the process ends at once with 128 + signal and a line saying
 *           nothing was written (a --resume's checkpoint is untouched).
 *   ARMED   the first signal sets vae_stop_signal, which the training loop
 *           reads after each step and the end of the run reads between its
 *           files; the run then writes its interrupt checkpoint and ends with
 *           128 + signal. A second signal ends the process at once (the
 *           last checkpoint is a whole, renamed file).
 *   DONE    (after vae_stop_signals_finish): the exit status is decided and
 *           every file written; a signal now ends the process at once with
 *           128 + signal, so that a signal is never lost to an exit 0.
 *
 * Not here: what the run writes when stopped (cmd_train.c). Commands other
 * than train install nothing: the default action ends them.
 */
#ifndef VAE_STOP_SIGNAL_H
#define VAE_STOP_SIGNAL_H

#include <signal.h>

/* SIGINT or SIGTERM once a signal asked an armed run to stop; 0 until then. Written only by the
 * signal thread (atomically); read by the training loop after each step. */
extern volatile sig_atomic_t vae_stop_signal;

/* Block SIGINT and SIGTERM in the calling thread and start the signal thread, in phase SETUP.
 * Must be called before any other thread is started (before the backend is made). `command`
 * names the program in messages ("cuvae train"). 0, or -1 with vae_set_error. */
int vae_stop_signals_start(const char *command);
/* From here a signal stops the run at its next safe point (phase ARMED). */
void vae_stop_signals_arm(void);
/* The exit status rc, or 128 + the signal when one arrived while armed (and rc was 0); from
 * here a signal ends the process at once with 128 + signal (phase DONE). */
int vae_stop_signals_finish(int rc);

#endif
