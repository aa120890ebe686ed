/*
 * fakesdk.c: a C stand-in for Hikvision's libhcnetsdk.so (HCNetSDK V6.1.x, Linux).
 *
 * It exports the NET_DVR_* functions hikwatch resolves, with the vendor's C ABI and its
 * own struct definitions (sizes and offsets checked below against docs/hcnetsdk.md for
 * both 32- and 64-bit targets). Behaviour is scripted through the device address string
 * of each login, so Rust tests need no unsafe code to drive it. Tokens are separated by
 * ';' (see tests/fakesdk/src/lib.rs for the grammar and examples):
 *
 *   hang | hang=MS          the (sync or async) login blocks forever / for MS ms
 *   delay=MS                the login succeeds after MS ms
 *   err=N                   the login fails with error N
 *   auth=N                  wrong password: error 1, bySupportLock=1, byRetryLoginTime=N
 *   lock=S                  locked: error 153, bySupportLock=1, dwSurplusLockTime=S
 *   pw=SECRET               the login fails with error 1 unless the password is SECRET
 *   exc=0xTYPE@MS[xN]       N (default 1) exception callbacks of TYPE, MS ms after login
 *   down@MS                 the device "powers off" MS ms after login: one 0x8000
 *                           exception, then every heartbeat fails with error 7
 *   hb=N                    every heartbeat fails with error N
 *   stream=FPSfps           RealPlay_V40 delivers FPS data callbacks per second
 *   gap=MS@S s              ... with one pause of MS ms starting S s after the first frame
 *   frame=BYTES             bytes per data callback (default 4000)
 *   rp=N                    RealPlay_V40 fails with error N
 *   serial=S, model=M       device info
 *   logout_hang=MS          Logout blocks for MS ms
 *
 * Introspection without unsafe: NET_DVR_STDXMLConfig "GET /fake/config" returns the
 * values the loader set (SDK path, crypto paths, timeouts, reconnect switch).
 *
 * Threads: exception, async-login and stream callbacks run on threads this library
 * creates, never the caller's, like the real SDK. NET_DVR_Cleanup (last reference) stops
 * and waits for every such thread, so no callback runs after it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FAKE_BUILD_VERSION
/* 6.1.99.0: no vendor release has it, so a test can tell the stand-in from the real SDK
   (fakesdk::VERSION in src/lib.rs says the same). */
#define FAKE_BUILD_VERSION 0x06016300u
#endif

#define API __attribute__((visibility("default")))

typedef int BOOL;
typedef int LONG;
typedef unsigned int DWORD;
typedef unsigned int UINT;
typedef unsigned short WORD;
typedef unsigned char BYTE;
#define TRUE 1
#define FALSE 0

/* ---- structs (own definitions, checked against docs/hcnetsdk.md section 2) ------------ */

typedef struct {
    BYTE sSerialNumber[48];
    BYTE byAlarmInPortNum, byAlarmOutPortNum, byDiskNum, byDVRType, byChanNum, byStartChan;
    BYTE byAudioChanNum, byIPChanNum, byZeroChanNum, byMainProto, bySubProto, bySupport;
    BYTE bySupport1, bySupport2;
    WORD wDevType;
    BYTE bySupport3, byMultiStreamProto, byStartDChan, byStartDTalkChan, byHighDChanNum;
    BYTE bySupport4, byLanguageType, byVoiceInChanNum, byStartVoiceInChanNo, bySupport5;
    BYTE bySupport6, byMirrorChanNum;
    WORD wStartMirrorChanNo;
    BYTE bySupport7, byRes2;
} DEVICEINFO_V30;

typedef struct {
    DEVICEINFO_V30 struDeviceV30;
    BYTE bySupportLock, byRetryLoginTime, byPasswordLevel, byProxyType;
    DWORD dwSurplusLockTime;
    BYTE byCharEncodeType, bySupportDev5, bySupport, byLoginMode;
    DWORD dwOEMCode;
    int iResidualValidity;
    BYTE byResidualValidity, bySingleStartDTalkChan, bySingleDTalkChanNums;
    BYTE byPassWordResetLevel, bySupportStreamEncrypt, byMarketType, byTLSCap;
    BYTE byRes2[237];
} DEVICEINFO_V40;

typedef void (*LOGIN_CB)(LONG lUserID, DWORD dwResult, DEVICEINFO_V30 *info, void *pUser);

typedef struct {
    char sDeviceAddress[129];
    BYTE byUseTransport;
    WORD wPort;
    char sUserName[64];
    char sPassword[64];
    LOGIN_CB cbLoginResult;
    void *pUser;
    BOOL bUseAsynLogin;
    BYTE byProxyType, byUseUTCTime, byLoginMode, byHttps;
    LONG iProxyID;
    BYTE byVerifyMode;
    BYTE byRes3[119];
} USER_LOGIN_INFO;

typedef struct {
    LONG lChannel;
    DWORD dwStreamType, dwLinkMode;
    UINT hPlayWnd; /* HWND is unsigned int on Linux */
    DWORD bBlocked, bPassbackRecord;
    BYTE byPreviewMode, byStreamID[32], byProtoType, byRes1, byVideoCodingType;
    DWORD dwDisplayBufNum;
    BYTE byNPQMode, byRecvMetaData, byDataType, byRes[213];
} PREVIEWINFO;

typedef struct {
    char sPath[256];
    BYTE byRes[128];
} LOCAL_SDK_PATH;

typedef struct {
    DWORD dwSize;
    void *lpRequestUrl;
    DWORD dwRequestUrlLen;
    void *lpInBuffer;
    DWORD dwInBufferSize;
    DWORD dwRecvTimeOut;
    BYTE byForceEncrpt, byNumOfMultiPart, byMIMEType, byRes1;
    DWORD dwSendTimeOut;
    BYTE byRes[24];
} XML_CONFIG_INPUT;

typedef struct {
    DWORD dwSize;
    void *lpOutBuffer;
    DWORD dwOutBufferSize;
    DWORD dwReturnedXMLSize;
    void *lpStatusBuffer;
    DWORD dwStatusSize;
    BYTE byRes[32];
} XML_CONFIG_OUTPUT;

typedef struct {
    DWORD dwTotalLoginNum, dwTotalRealPlayNum, dwTotalPlayBackNum, dwTotalAlarmChanNum;
    DWORD dwTotalFormatNum, dwTotalFileSearchNum, dwTotalLogSearchNum, dwTotalSerialNum;
    DWORD dwTotalUpgradeNum, dwTotalVoiceComNum, dwTotalBroadCastNum;
    DWORD dwRes[10];
} SDKSTATE;

typedef struct {
    DWORD dwCheckOnlineTimeout, dwCheckOnlineNetFailMax;
    BYTE byRes[256];
} LOCAL_CHECK_DEV;

#define LP64 (sizeof(void *) == 8)
_Static_assert(sizeof(DEVICEINFO_V30) == 80, "DEVICEINFO_V30 is 80 bytes");
_Static_assert(offsetof(DEVICEINFO_V30, wDevType) == 62, "wDevType at 62");
_Static_assert(offsetof(DEVICEINFO_V30, wStartMirrorChanNo) == 76, "wStartMirrorChanNo at 76");
_Static_assert(sizeof(DEVICEINFO_V40) == 344, "DEVICEINFO_V40 is 344 bytes");
_Static_assert(offsetof(DEVICEINFO_V40, bySupportLock) == 80, "bySupportLock at 80");
_Static_assert(offsetof(DEVICEINFO_V40, dwSurplusLockTime) == 84, "dwSurplusLockTime at 84");
_Static_assert(offsetof(DEVICEINFO_V40, byLoginMode) == 91, "byLoginMode at 91");
_Static_assert(offsetof(DEVICEINFO_V40, byTLSCap) == 106, "byTLSCap at 106");
_Static_assert(sizeof(USER_LOGIN_INFO) == (LP64 ? 416 : 400), "USER_LOGIN_INFO 416/400");
_Static_assert(offsetof(USER_LOGIN_INFO, wPort) == 130, "wPort at 130");
_Static_assert(offsetof(USER_LOGIN_INFO, sPassword) == 196, "sPassword at 196");
_Static_assert(offsetof(USER_LOGIN_INFO, cbLoginResult) == (LP64 ? 264 : 260), "cb 264/260");
_Static_assert(offsetof(USER_LOGIN_INFO, pUser) == (LP64 ? 272 : 264), "pUser 272/264");
_Static_assert(offsetof(USER_LOGIN_INFO, bUseAsynLogin) == (LP64 ? 280 : 268), "async 280/268");
_Static_assert(offsetof(USER_LOGIN_INFO, byLoginMode) == (LP64 ? 286 : 274), "mode 286/274");
_Static_assert(offsetof(USER_LOGIN_INFO, iProxyID) == (LP64 ? 288 : 276), "proxy 288/276");
_Static_assert(offsetof(USER_LOGIN_INFO, byRes3) == (LP64 ? 293 : 281), "res3 293/281");
_Static_assert(sizeof(PREVIEWINFO) == 280, "PREVIEWINFO is 280 bytes");
_Static_assert(offsetof(PREVIEWINFO, byStreamID) == 25, "byStreamID at 25");
_Static_assert(offsetof(PREVIEWINFO, dwDisplayBufNum) == 60, "dwDisplayBufNum at 60");
_Static_assert(offsetof(PREVIEWINFO, byRes) == 67, "byRes at 67");
_Static_assert(sizeof(LOCAL_SDK_PATH) == 384, "LOCAL_SDK_PATH is 384 bytes");
_Static_assert(sizeof(XML_CONFIG_INPUT) == (LP64 ? 72 : 56), "XML_CONFIG_INPUT 72/56");
_Static_assert(sizeof(XML_CONFIG_OUTPUT) == (LP64 ? 72 : 56), "XML_CONFIG_OUTPUT 72/56");
_Static_assert(sizeof(SDKSTATE) == 84, "SDKSTATE is 84 bytes");
_Static_assert(sizeof(LOCAL_CHECK_DEV) == 264, "LOCAL_CHECK_DEV is 264 bytes");

/* ---- global state ---------------------------------------------------------------------- */

#define MAX_USERS 2048
#define MAX_PLAYS 512

typedef struct {
    int hang_ms;            /* -1 none, 0 forever */
    int delay_ms;
    DWORD err;
    int auth_left;          /* -1 none */
    int lock_secs;          /* -1 none */
    char pw[64];
    int has_pw;
    DWORD exc_type;
    int exc_ms, exc_count;
    int down_ms;            /* -1 none */
    DWORD hb_err;
    int fps, gap_ms, gap_at_s, frame_bytes;
    DWORD rp_err;
    char serial[48];
    char model[48];
    int logout_hang_ms;
} script_t;

typedef struct {
    int used;
    unsigned gen;
    int down;
    int failed; /* async login failed: slot held until Logout */
    script_t s;
} user_t;

typedef void (*REALDATA_CB)(LONG h, DWORD type, BYTE *buf, DWORD len, void *user);

typedef struct {
    int used;
    volatile int stop; /* set under g_mu, polled by the play thread */
    LONG uid;
    pthread_t thread;
    REALDATA_CB cb;
    void *user;
    script_t s;
} play_t;

typedef void (*EXC_CB)(DWORD type, LONG uid, LONG handle, void *user);

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_init_refs;
static int g_shutdown;
static int g_threads; /* helper threads alive (exception, async login) */
static char g_sdk_path[256];
static char g_crypto[512];
static char g_ssl[512];
static DWORD g_connect_ms = 3500, g_recv_ms = 5000, g_reconnect_ms = 5000;
static int g_reconnect_on = 1;
/* SetSDKLocalCfg(10): the SDK's own session heartbeat (defaults as the real SDK reads back) */
static DWORD g_check_ms = 120000, g_check_fail = 1;
static EXC_CB g_exc_cb;
static void *g_exc_user;
static user_t g_users[MAX_USERS];
static play_t g_plays[MAX_PLAYS];
static __thread DWORD t_err;

static BOOL fail(DWORD code) { t_err = code; return FALSE; }
static BOOL ok(void) { t_err = 0; return TRUE; }

static int inited(void) {
    pthread_mutex_lock(&g_mu);
    int r = g_init_refs > 0;
    pthread_mutex_unlock(&g_mu);
    return r;
}

/* Sleeps up to ms (forever when ms == 0 and forever is set); returns early on Cleanup. */
static void fake_sleep(int ms, int forever) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = (long long)until.tv_nsec + (long long)ms * 1000000LL;
    until.tv_sec += ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    pthread_mutex_lock(&g_mu);
    while (!g_shutdown) {
        int rc = forever ? pthread_cond_wait(&g_cv, &g_mu)
                         : pthread_cond_timedwait(&g_cv, &g_mu, &until);
        if (rc == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&g_mu);
}

static void parse_script(const char *addr, script_t *s) {
    memset(s, 0, sizeof *s);
    s->hang_ms = -1;
    s->auth_left = -1;
    s->lock_secs = -1;
    s->down_ms = -1;
    s->exc_count = 1;
    s->frame_bytes = 4000;
    s->logout_hang_ms = 0;
    strcpy(s->serial, "FAKE0000000000");
    strcpy(s->model, "DS-FAKE-1");
    char buf[130];
    strncpy(buf, addr, 129);
    buf[129] = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        if (strcmp(tok, "hang") == 0) s->hang_ms = 0;
        else if (sscanf(tok, "hang=%d", &s->hang_ms) == 1) {}
        else if (sscanf(tok, "delay=%d", &s->delay_ms) == 1) {}
        else if (sscanf(tok, "err=%u", &s->err) == 1) {}
        else if (sscanf(tok, "auth=%d", &s->auth_left) == 1) {}
        else if (sscanf(tok, "lock=%d", &s->lock_secs) == 1) {}
        else if (strncmp(tok, "pw=", 3) == 0) { strncpy(s->pw, tok + 3, 63); s->has_pw = 1; }
        else if (sscanf(tok, "exc=%x@%dmsx%d", &s->exc_type, &s->exc_ms, &s->exc_count) >= 2) {}
        else if (sscanf(tok, "down@%d", &s->down_ms) == 1) {}
        else if (sscanf(tok, "hb=%u", &s->hb_err) == 1) {}
        else if (sscanf(tok, "stream=%dfps", &s->fps) == 1) {}
        else if (sscanf(tok, "gap=%dms@%ds", &s->gap_ms, &s->gap_at_s) == 2) {}
        else if (sscanf(tok, "frame=%d", &s->frame_bytes) == 1) {}
        else if (sscanf(tok, "rp=%u", &s->rp_err) == 1) {}
        else if (strncmp(tok, "serial=", 7) == 0) { strncpy(s->serial, tok + 7, 47); }
        else if (strncmp(tok, "model=", 6) == 0) { strncpy(s->model, tok + 6, 47); }
        else if (sscanf(tok, "logout_hang=%d", &s->logout_hang_ms) == 1) {}
        /* anything else (e.g. a real address like 127.0.0.1) is ignored */
    }
    if (s->exc_count < 1) s->exc_count = 1;
    if (s->frame_bytes < 1) s->frame_bytes = 1;
}

static int file_exists(const char *p) {
    struct stat st;
    return p[0] && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int com_dir_ok(void) {
    char p[300];
    struct stat st;
    snprintf(p, sizeof p, "%s/HCNetSDKCom", g_sdk_path);
    return g_sdk_path[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Runs a login script on the calling thread. Returns 0 on success or the error code. */
static DWORD run_login(const script_t *s, const char *password, DEVICEINFO_V40 *out) {
    if (s->hang_ms == 0) fake_sleep(0, 1);
    if (s->hang_ms > 0) fake_sleep(s->hang_ms, 0);
    if (s->delay_ms > 0) fake_sleep(s->delay_ms, 0);
    if (!com_dir_ok()) return 107;          /* HCNetSDKCom component failed to load */
    if (!file_exists(g_crypto)) return 157; /* libcrypto load failure */
    if (!file_exists(g_ssl)) return 156;    /* libssl load failure */
    if (s->lock_secs >= 0) {
        if (out) { out->bySupportLock = 1; out->dwSurplusLockTime = (DWORD)s->lock_secs; }
        return 153;
    }
    if (s->auth_left >= 0 || (s->has_pw && strncmp(s->pw, password, 64) != 0)) {
        if (out && s->auth_left >= 0) {
            out->bySupportLock = 1;
            out->byRetryLoginTime = (BYTE)s->auth_left;
        }
        return 1;
    }
    if (s->err) return s->err;
    if (out) {
        strncpy((char *)out->struDeviceV30.sSerialNumber, s->serial, 48);
        out->struDeviceV30.byChanNum = 1;
        out->struDeviceV30.byStartChan = 1;
        out->byLoginMode = 1;
    }
    return 0;
}

/* Round-robin from the last id handed out: a freed id is not handed out again at once,
 * so a test that checks a logged-out id is not raced by a login of a test running beside
 * it. Ids still come back after a wrap, as the real SDK's do. */
static LONG alloc_user(const script_t *s) {
    static int next = 0;
    pthread_mutex_lock(&g_mu);
    for (int k = 0; k < MAX_USERS; k++) {
        int i = (next + k) % MAX_USERS;
        if (!g_users[i].used) {
            next = (i + 1) % MAX_USERS;
            g_users[i].used = 1;
            g_users[i].gen++;
            g_users[i].down = 0;
            g_users[i].failed = 0;
            g_users[i].s = *s;
            pthread_mutex_unlock(&g_mu);
            return i;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return -1;
}

static void free_user(LONG uid) {
    pthread_mutex_lock(&g_mu);
    g_users[uid].used = 0;
    pthread_mutex_unlock(&g_mu);
}

typedef struct {
    LONG uid;
    unsigned gen;
    script_t s;
} exc_job_t;

static void thread_enter(void) { pthread_mutex_lock(&g_mu); g_threads++; pthread_mutex_unlock(&g_mu); }
static void thread_leave(void) {
    pthread_mutex_lock(&g_mu);
    g_threads--;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static int still_valid(LONG uid, unsigned gen) {
    pthread_mutex_lock(&g_mu);
    int r = !g_shutdown && g_users[uid].used && g_users[uid].gen == gen;
    pthread_mutex_unlock(&g_mu);
    return r;
}

static void fire(DWORD type, LONG uid, LONG handle) {
    pthread_mutex_lock(&g_mu);
    EXC_CB cb = g_exc_cb;
    void *user = g_exc_user;
    pthread_mutex_unlock(&g_mu);
    if (cb) cb(type, uid, handle, user);
}

static void *exc_thread(void *arg) {
    exc_job_t *j = arg;
    const script_t *s = &j->s;
    int done_ms = 0;
    int exc_pending = s->exc_type != 0, down_pending = s->down_ms >= 0;
    while (exc_pending || down_pending) {
        int next = 1 << 30;
        if (exc_pending && s->exc_ms < next) next = s->exc_ms;
        if (down_pending && s->down_ms < next) next = s->down_ms;
        if (next > done_ms) { fake_sleep(next - done_ms, 0); done_ms = next; }
        if (!still_valid(j->uid, j->gen)) break;
        if (exc_pending && s->exc_ms <= done_ms) {
            for (int i = 0; i < s->exc_count; i++) fire(s->exc_type, j->uid, 0);
            exc_pending = 0;
        }
        if (down_pending && s->down_ms <= done_ms) {
            pthread_mutex_lock(&g_mu);
            g_users[j->uid].down = 1;
            pthread_mutex_unlock(&g_mu);
            fire(0x8000, j->uid, 0);
            down_pending = 0;
        }
    }
    free(j);
    thread_leave();
    return NULL;
}

static void start_exc_thread(LONG uid, const script_t *s) {
    if (!s->exc_type && s->down_ms < 0) return;
    exc_job_t *j = malloc(sizeof *j);
    if (!j) return;
    pthread_mutex_lock(&g_mu);
    j->gen = g_users[uid].gen;
    pthread_mutex_unlock(&g_mu);
    j->uid = uid;
    j->s = *s;
    pthread_t t;
    thread_enter();
    if (pthread_create(&t, NULL, exc_thread, j) != 0) { free(j); thread_leave(); return; }
    pthread_detach(t);
}

typedef struct {
    LONG uid;
    script_t s;
    char password[65];
    LOGIN_CB cb;
    void *user;
} async_job_t;

static void *async_thread(void *arg) {
    async_job_t *j = arg;
    DEVICEINFO_V40 info;
    memset(&info, 0, sizeof info);
    DWORD e = run_login(&j->s, j->password, &info);
    memset(j->password, 0, sizeof j->password);
    pthread_mutex_lock(&g_mu);
    int shutting_down = g_shutdown;
    pthread_mutex_unlock(&g_mu);
    if (e == 0 && !shutting_down) {
        start_exc_thread(j->uid, &j->s);
        if (j->cb) j->cb(j->uid, 1, &info.struDeviceV30, j->user);
    } else {
        /* Like the real SDK (6.1.9.48), a failed async login keeps its uid slot until
           NET_DVR_Logout; the session itself is dead (calls on it fail with 47). */
        t_err = e ? e : 3;
        pthread_mutex_lock(&g_mu);
        g_users[j->uid].failed = 1;
        pthread_mutex_unlock(&g_mu);
        if (j->cb) j->cb(j->uid, 0, NULL, j->user);
    }
    free(j);
    thread_leave();
    return NULL;
}

/* ---- exported API -------------------------------------------------------------------- */

/* Init fails (error 41) when the SDK folder given to SetSDKInitCfg(2) has
   FAKE-INIT-FAILS in its path: the loader must then not call Cleanup. */
API BOOL NET_DVR_Init(void) {
    pthread_mutex_lock(&g_mu);
    if (strstr(g_sdk_path, "FAKE-INIT-FAILS")) {
        pthread_mutex_unlock(&g_mu);
        return fail(41);
    }
    g_init_refs++;
    g_shutdown = 0;
    pthread_mutex_unlock(&g_mu);
    return ok();
}

API BOOL NET_DVR_Cleanup(void) {
    pthread_mutex_lock(&g_mu);
    if (g_init_refs == 0) {
        /* A Cleanup that pairs with no successful Init: leave a mark in the SDK folder
           (when SetSDKInitCfg(2) named one) for the tests to find. */
        if (g_sdk_path[0]) {
            char mark[512];
            snprintf(mark, sizeof mark, "%.255s/UNPAIRED-CLEANUP", g_sdk_path);
            FILE *f = fopen(mark, "w");
            if (f) fclose(f);
        }
        pthread_mutex_unlock(&g_mu);
        return fail(3);
    }
    if (--g_init_refs > 0) { pthread_mutex_unlock(&g_mu); return ok(); }
    g_shutdown = 1;
    pthread_cond_broadcast(&g_cv);
    for (int i = 0; i < MAX_PLAYS; i++) g_plays[i].stop = 1;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < MAX_PLAYS; i++) {
        if (g_plays[i].used) { pthread_join(g_plays[i].thread, NULL); g_plays[i].used = 0; }
    }
    pthread_mutex_lock(&g_mu);
    while (g_threads > 0) pthread_cond_wait(&g_cv, &g_mu);
    for (int i = 0; i < MAX_USERS; i++) g_users[i].used = 0;
    g_exc_cb = NULL;
    g_exc_user = NULL;
    g_sdk_path[0] = g_crypto[0] = g_ssl[0] = 0;
    g_reconnect_on = 1;
    g_reconnect_ms = 5000;
    g_connect_ms = 3500;
    g_recv_ms = 5000;
    g_check_ms = 120000;
    g_check_fail = 1;
    pthread_mutex_unlock(&g_mu);
    return ok();
}

API BOOL NET_DVR_SetSDKInitCfg(int type, void *arg) {
    if (!arg) return fail(17);
    pthread_mutex_lock(&g_mu);
    BOOL r = TRUE;
    switch (type) {
    case 2: snprintf(g_sdk_path, sizeof g_sdk_path, "%.255s", ((LOCAL_SDK_PATH *)arg)->sPath); break;
    case 3: snprintf(g_crypto, sizeof g_crypto, "%s", (const char *)arg); break;
    case 4: snprintf(g_ssl, sizeof g_ssl, "%s", (const char *)arg); break;
    default: r = FALSE;
    }
    pthread_mutex_unlock(&g_mu);
    return r ? ok() : fail(17);
}

API BOOL NET_DVR_SetConnectTime(DWORD wait_ms, DWORD tries) {
    (void)tries;
    if (!inited()) return fail(3);
    if (wait_ms < 300) wait_ms = 300;
    if (wait_ms > 75000) wait_ms = 75000;
    g_connect_ms = wait_ms;
    return ok();
}

API BOOL NET_DVR_SetReconnect(DWORD interval, BOOL enable) {
    if (!inited()) return fail(3);
    g_reconnect_ms = interval;
    g_reconnect_on = enable ? 1 : 0;
    return ok();
}

API BOOL NET_DVR_SetRecvTimeOut(DWORD ms) {
    if (!inited()) return fail(3);
    g_recv_ms = ms;
    return ok();
}

/* Local configuration: only type 10 (NET_DVR_LOCAL_CHECK_DEV) is modelled. Like the header
   says, the heartbeat period must be 30-120 s (0 means 120 s). */
API BOOL NET_DVR_SetSDKLocalCfg(int type, void *arg) {
    if (!inited()) return fail(3);
    if (!arg) return fail(17);
    if (type != 10) return fail(17);
    const LOCAL_CHECK_DEV *c = arg;
    DWORD t = c->dwCheckOnlineTimeout ? c->dwCheckOnlineTimeout : 120000;
    if (t < 30000 || t > 120000) return fail(17);
    pthread_mutex_lock(&g_mu);
    g_check_ms = t;
    g_check_fail = c->dwCheckOnlineNetFailMax;
    pthread_mutex_unlock(&g_mu);
    return ok();
}

API BOOL NET_DVR_GetSDKLocalCfg(int type, void *arg) {
    if (!inited()) return fail(3);
    if (!arg) return fail(17);
    if (type != 10) return fail(17);
    LOCAL_CHECK_DEV *c = arg;
    memset(c, 0, sizeof *c);
    pthread_mutex_lock(&g_mu);
    c->dwCheckOnlineTimeout = g_check_ms;
    c->dwCheckOnlineNetFailMax = g_check_fail;
    pthread_mutex_unlock(&g_mu);
    return ok();
}

API BOOL NET_DVR_SetLogToFile(DWORD level, char *dir, BOOL autodel) {
    (void)level; (void)dir; (void)autodel;
    return ok();
}

API BOOL NET_DVR_SetExceptionCallBack_V30(UINT r1, void *r2, EXC_CB cb, void *user) {
    (void)r1; (void)r2;
    if (!inited()) return fail(3);
    if (!cb) return fail(17);
    pthread_mutex_lock(&g_mu);
    g_exc_cb = cb;
    g_exc_user = user;
    pthread_mutex_unlock(&g_mu);
    return ok();
}

/* Like the real SDK, the version getters answer 0 before NET_DVR_Init. */
API DWORD NET_DVR_GetSDKVersion(void) { return inited() ? 0x00060001u : 0; }
API DWORD NET_DVR_GetSDKBuildVersion(void) { return inited() ? FAKE_BUILD_VERSION : 0; }
API DWORD NET_DVR_GetLastError(void) { return t_err; }

API char *NET_DVR_GetErrorMsg(LONG *code) {
    DWORD e = t_err;
    if (code) *code = (LONG)e;
    switch (e) {
    case 0: return "No error.";
    case 1: return "User name or password error.";
    case 3: return "SDK is not initialized.";
    case 7: return "Failed to connect to the device.";
    case 10: return "Timeout when receiving the data from the device.";
    case 17: return "Parameter error.";
    case 47: return "User doest not exist.";
    case 153: return "The IP is be locked.";
    default: return "Fake SDK error.";
    }
}

API LONG NET_DVR_Login_V40(USER_LOGIN_INFO *in, DEVICEINFO_V40 *out) {
    if (!in) { t_err = 17; return -1; }
    if (!inited()) { t_err = 3; return -1; }
    script_t s;
    char addr[130];
    memcpy(addr, in->sDeviceAddress, 129);
    addr[129] = 0;
    parse_script(addr, &s);
    /* The real SDK also wants the device-info pointer for an asynchronous login. */
    if (!out) { t_err = 17; return -1; }
    if (in->bUseAsynLogin) {
        LONG uid = alloc_user(&s);
        if (uid < 0) { t_err = 46; return -1; }
        async_job_t *j = calloc(1, sizeof *j);
        if (!j) { free_user(uid); t_err = 41; return -1; }
        j->uid = uid;
        j->s = s;
        memcpy(j->password, in->sPassword, 64);
        j->cb = in->cbLoginResult;
        j->user = in->pUser;
        pthread_t t;
        thread_enter();
        if (pthread_create(&t, NULL, async_thread, j) != 0) {
            free(j); free_user(uid); thread_leave(); t_err = 41; return -1;
        }
        pthread_detach(t);
        t_err = 0;
        return uid;
    }
    memset(out, 0, sizeof *out);
    char pw[65];
    memcpy(pw, in->sPassword, 64);
    pw[64] = 0;
    DWORD e = run_login(&s, pw, out);
    memset(pw, 0, sizeof pw);
    if (e) { t_err = e; return -1; }
    LONG uid = alloc_user(&s);
    if (uid < 0) { t_err = 46; return -1; }
    start_exc_thread(uid, &s);
    t_err = 0;
    return uid;
}

static int valid_user(LONG uid, script_t *copy, int *down) {
    if (uid < 0 || uid >= MAX_USERS) return 0;
    pthread_mutex_lock(&g_mu);
    int r = g_users[uid].used && !g_users[uid].failed;
    if (r && copy) *copy = g_users[uid].s;
    if (r && down) *down = g_users[uid].down;
    pthread_mutex_unlock(&g_mu);
    return r;
}

API BOOL NET_DVR_Logout(LONG uid) {
    if (!inited()) return fail(3);
    script_t s;
    if (uid < 0 || uid >= MAX_USERS) return fail(47);
    pthread_mutex_lock(&g_mu);
    int used = g_users[uid].used;
    s = g_users[uid].s;
    pthread_mutex_unlock(&g_mu);
    if (!used) return fail(47);
    if (s.logout_hang_ms > 0) fake_sleep(s.logout_hang_ms, 0);
    for (int i = 0; i < MAX_PLAYS; i++) {
        pthread_mutex_lock(&g_mu);
        int mine = g_plays[i].used && g_plays[i].uid == uid;
        if (mine) g_plays[i].stop = 1;
        pthread_mutex_unlock(&g_mu);
        if (mine) {
            pthread_join(g_plays[i].thread, NULL);
            pthread_mutex_lock(&g_mu);
            g_plays[i].used = 0;
            pthread_mutex_unlock(&g_mu);
        }
    }
    free_user(uid);
    return ok();
}

API BOOL NET_DVR_RemoteControl(LONG uid, DWORD cmd, void *in, DWORD in_size) {
    (void)in; (void)in_size;
    if (!inited()) return fail(3);
    script_t s;
    int down = 0;
    if (!valid_user(uid, &s, &down)) return fail(47);
    if (cmd != 20005) return fail(23);
    if (down) { fire(0x8000, uid, 0); return fail(7); }
    if (s.hb_err) return fail(s.hb_err);
    return ok();
}

static void *play_thread(void *arg) {
    play_t *p = arg;
    LONG h = (LONG)(p - g_plays);
    BYTE *buf = calloc(1, (size_t)p->s.frame_bytes);
    BYTE head[40] = { 'I', 'M', 'K', 'H' };
    int period_ms = p->s.fps > 0 ? 1000 / p->s.fps : 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int gap_done = p->s.gap_ms <= 0;
    if (p->cb && !p->stop) p->cb(h, 1, head, sizeof head, p->user);
    while (!p->stop && buf) {
        if (period_ms <= 0) { usleep(10000); continue; }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long el = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000LL;
        if (!gap_done && el >= (long long)p->s.gap_at_s * 1000) {
            for (int slept = 0; slept < p->s.gap_ms && !p->stop; slept += 10) usleep(10000);
            gap_done = 1;
            continue;
        }
        p->cb(h, 2, buf, (DWORD)p->s.frame_bytes, p->user);
        for (int slept = 0; slept < period_ms && !p->stop; slept += 5) usleep(5000);
    }
    free(buf);
    return NULL;
}

API LONG NET_DVR_RealPlay_V40(LONG uid, PREVIEWINFO *info, REALDATA_CB cb, void *user) {
    if (!inited()) { t_err = 3; return -1; }
    if (!info) { t_err = 17; return -1; }
    script_t s;
    int down = 0;
    if (!valid_user(uid, &s, &down)) { t_err = 47; return -1; }
    if (down) { t_err = 7; return -1; }
    if (s.rp_err) { t_err = s.rp_err; return -1; }
    if (info->lChannel < 1) { t_err = 4; return -1; }
    pthread_mutex_lock(&g_mu);
    int h = -1;
    for (int i = 0; i < MAX_PLAYS; i++) if (!g_plays[i].used) { h = i; break; }
    if (h < 0) { pthread_mutex_unlock(&g_mu); t_err = 46; return -1; }
    play_t *p = &g_plays[h];
    p->used = 1;
    p->stop = 0;
    p->uid = uid;
    p->cb = cb;
    p->user = user;
    p->s = s;
    if (!cb) p->s.fps = 0;
    int rc = pthread_create(&p->thread, NULL, play_thread, p);
    if (rc != 0) p->used = 0;
    pthread_mutex_unlock(&g_mu);
    if (rc != 0) { t_err = 41; return -1; }
    t_err = 0;
    return h;
}

API BOOL NET_DVR_StopRealPlay(LONG h) {
    if (!inited()) return fail(3);
    if (h < 0 || h >= MAX_PLAYS) return fail(47);
    pthread_mutex_lock(&g_mu);
    int used = g_plays[h].used;
    if (used) g_plays[h].stop = 1;
    pthread_mutex_unlock(&g_mu);
    if (!used) return fail(47);
    pthread_join(g_plays[h].thread, NULL);
    pthread_mutex_lock(&g_mu);
    g_plays[h].used = 0;
    pthread_mutex_unlock(&g_mu);
    return ok();
}

#ifndef FAKE_OMIT_STDXML
API BOOL NET_DVR_STDXMLConfig(LONG uid, XML_CONFIG_INPUT *in, XML_CONFIG_OUTPUT *out) {
    if (!inited()) return fail(3);
    if (!in || !out || !in->lpRequestUrl) return fail(17);
    if (in->dwSize != sizeof *in || out->dwSize != sizeof *out) return fail(17);
    script_t s;
    if (!valid_user(uid, &s, NULL)) return fail(47);
    /* The real SDK reads the URL as a C string and ignores dwRequestUrlLen; insist on
       the terminator so a caller relying on the length fails here too. */
    if (((const char *)in->lpRequestUrl)[in->dwRequestUrlLen] != 0) return fail(17);
    char url[256];
    size_t n = in->dwRequestUrlLen < sizeof url - 1 ? in->dwRequestUrlLen : sizeof url - 1;
    memcpy(url, in->lpRequestUrl, n);
    url[n] = 0;
    char body[2048];
    if (strcmp(url, "GET /ISAPI/System/deviceInfo") == 0) {
        snprintf(body, sizeof body,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<DeviceInfo version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n"
                 "<deviceName>fake &amp; camera</deviceName>\n<model>%s</model>\n"
                 "<serialNumber>%s</serialNumber>\n<macAddress>00:11:22:33:44:55</macAddress>\n"
                 "<firmwareVersion>V5.7.0</firmwareVersion>\n"
                 "<firmwareReleasedDate>build 230410</firmwareReleasedDate>\n</DeviceInfo>\n",
                 s.model, s.serial);
    } else if (strcmp(url, "GET /fake/config") == 0) {
        pthread_mutex_lock(&g_mu);
        snprintf(body, sizeof body,
                 "sdk_path=%s\ncrypto=%s\nssl=%s\nconnect_ms=%u\nrecv_ms=%u\n"
                 "reconnect=%d\nreconnect_ms=%u\ncheck_online_ms=%u\ncheck_online_fail=%u\n",
                 g_sdk_path, g_crypto, g_ssl, g_connect_ms, g_recv_ms, g_reconnect_on,
                 g_reconnect_ms, g_check_ms, g_check_fail);
        pthread_mutex_unlock(&g_mu);
    } else {
        return fail(23);
    }
    size_t len = strlen(body);
    if (!out->lpOutBuffer || out->dwOutBufferSize < len) return fail(43);
    memcpy(out->lpOutBuffer, body, len);
    out->dwReturnedXMLSize = (DWORD)len;
    return ok();
}
#endif

API BOOL NET_DVR_GetSDKState(SDKSTATE *st) {
    if (!inited()) return fail(3);
    if (!st) return fail(17);
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < MAX_USERS; i++) st->dwTotalLoginNum += g_users[i].used ? 1 : 0;
    for (int i = 0; i < MAX_PLAYS; i++) st->dwTotalRealPlayNum += g_plays[i].used ? 1 : 0;
    pthread_mutex_unlock(&g_mu);
    return ok();
}
