/* N threads, each running pam_start/open_session/close_session/pam_end on
 * its own handle ITER times, all at once.
 *   cc -O2 -pthread -o pam_threads pam_threads.c -lpam
 *   pam_threads SERVICE USER NTHREADS ITER
 * Prints "ok N" or "failures N" and exits 0 only if every call succeeded;
 * each failure's call and PAM error go to stderr (the first 20). */
#include <pthread.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>

static const char *service, *user;
static int iterations;
static int failures;
static int reported;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start;

static int conv(int n, const struct pam_message **m, struct pam_response **r, void *d)
{
    (void)n; (void)m; (void)r; (void)d;
    return PAM_CONV_ERR;
}

static void *worker(void *arg)
{
    struct pam_conv c = {conv, NULL};
    int i, bad = 0;
    (void)arg;
    pthread_barrier_wait(&start);
    for (i = 0; i < iterations; i++) {
        pam_handle_t *h = NULL;
        const char *call = "pam_start";
        int rc = pam_start(service, user, &c, &h);
        if (rc == PAM_SUCCESS) { call = "pam_open_session"; rc = pam_open_session(h, 0); }
        if (rc == PAM_SUCCESS) { call = "pam_close_session"; rc = pam_close_session(h, 0); }
        if (rc != PAM_SUCCESS) {
            bad++;
            pthread_mutex_lock(&lock);
            if (reported++ < 20)
                fprintf(stderr, "iteration %d: %s: %d (%s)\n", i, call, rc, pam_strerror(h, rc));
            pthread_mutex_unlock(&lock);
        }
        if (h) pam_end(h, rc);
    }
    pthread_mutex_lock(&lock);
    failures += bad;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    int n, i;
    pthread_t *t;
    if (argc != 5) { fprintf(stderr, "usage: %s SERVICE USER NTHREADS ITER\n", argv[0]); return 2; }
    service = argv[1]; user = argv[2]; n = atoi(argv[3]); iterations = atoi(argv[4]);
    t = calloc(n, sizeof(*t));
    pthread_barrier_init(&start, NULL, n);
    for (i = 0; i < n; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (i = 0; i < n; i++) pthread_join(t[i], NULL);
    if (failures) { printf("failures %d\n", failures); return 1; }
    printf("ok %d\n", n * iterations);
    return 0;
}
