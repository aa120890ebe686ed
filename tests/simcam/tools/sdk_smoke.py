#!/usr/bin/env python3
"""Drive the REAL HCNetSDK (x86_64) against simcam: a development tool, not a test.

Usage (from the repository root, after `cargo build -p simcam`):

    python3 tests/simcam/tools/sdk_smoke.py [--sdk vendor/hcnetsdk-linux64] \
        [--simcam target/debug/simcam] [--scenario all|login|lockout|power|limit|relogin|faults]
        [--log /tmp/sdklog]

It starts `simcam` as a child (JSON-lines over stdin/stdout), loads libhcnetsdk.so with
ctypes (struct layouts and signatures from /work/shared/hcnetsdk-facts.md §1/§2), logs in
with byLoginMode = 1 (ISAPI) and checks what the SDK reports. Each check prints one line;
the exit code is the number of failed checks. The SDK's own log goes to --log (level 3).
"""
import argparse
import ctypes as C
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class LOCAL_SDK_PATH(C.Structure):
    _fields_ = [("sPath", C.c_char * 256), ("byRes", C.c_ubyte * 128)]


class USER_LOGIN_INFO(C.Structure):  # 416 bytes on LP64
    _fields_ = [
        ("sDeviceAddress", C.c_char * 129),
        ("byUseTransport", C.c_ubyte),
        ("wPort", C.c_uint16),
        ("sUserName", C.c_char * 64),
        ("sPassword", C.c_char * 64),
        ("cbLoginResult", C.c_void_p),
        ("pUser", C.c_void_p),
        ("bUseAsynLogin", C.c_int),
        ("byProxyType", C.c_ubyte),
        ("byUseUTCTime", C.c_ubyte),
        ("byLoginMode", C.c_ubyte),
        ("byHttps", C.c_ubyte),
        ("iProxyID", C.c_int),
        ("byVerifyMode", C.c_ubyte),
        ("byRes3", C.c_ubyte * 119),
    ]


class DEVICEINFO_V40(C.Structure):  # 344 bytes
    _fields_ = [
        ("sSerialNumber", C.c_char * 48),
        ("v30rest", C.c_ubyte * 32),
        ("bySupportLock", C.c_ubyte),
        ("byRetryLoginTime", C.c_ubyte),
        ("byPasswordLevel", C.c_ubyte),
        ("byProxyType", C.c_ubyte),
        ("dwSurplusLockTime", C.c_uint32),
        ("rest", C.c_ubyte * 256),
    ]


assert C.sizeof(USER_LOGIN_INFO) == 416, C.sizeof(USER_LOGIN_INFO)
assert C.sizeof(DEVICEINFO_V40) == 344, C.sizeof(DEVICEINFO_V40)

EXC_CB = C.CFUNCTYPE(None, C.c_uint32, C.c_int, C.c_int, C.c_void_p)


class Sdk:
    def __init__(self, folder, logdir):
        folder = os.path.abspath(folder)
        os.environ["LD_LIBRARY_PATH"] = folder
        # libhpr's RUNPATH is "./": load dependencies by absolute path first.
        for dep in ("libcrypto.so.1.1", "libssl.so.1.1", "libhpr.so", "libHCCore.so"):
            C.CDLL(os.path.join(folder, dep), mode=C.RTLD_GLOBAL)
        self.lib = lib = C.CDLL(os.path.join(folder, "libhcnetsdk.so"))
        lib.NET_DVR_SetSDKInitCfg.argtypes = [C.c_int, C.c_void_p]
        p = LOCAL_SDK_PATH()
        p.sPath = folder.encode()
        assert lib.NET_DVR_SetSDKInitCfg(2, C.byref(p))
        assert lib.NET_DVR_SetSDKInitCfg(3, C.c_char_p(os.path.join(folder, "libcrypto.so.1.1").encode()))
        assert lib.NET_DVR_SetSDKInitCfg(4, C.c_char_p(os.path.join(folder, "libssl.so.1.1").encode()))
        assert lib.NET_DVR_Init()
        if logdir:
            os.makedirs(logdir, exist_ok=True)
            lib.NET_DVR_SetLogToFile.argtypes = [C.c_uint32, C.c_char_p, C.c_int]
            lib.NET_DVR_SetLogToFile(3, (logdir.rstrip("/") + "/").encode(), 0)
        lib.NET_DVR_SetConnectTime(2000, 1)
        lib.NET_DVR_SetReconnect(5000, 1)
        lib.NET_DVR_Login_V40.argtypes = [C.POINTER(USER_LOGIN_INFO), C.POINTER(DEVICEINFO_V40)]
        lib.NET_DVR_Login_V40.restype = C.c_int
        lib.NET_DVR_RemoteControl.argtypes = [C.c_int, C.c_uint32, C.c_void_p, C.c_uint32]
        lib.NET_DVR_GetLastError.restype = C.c_uint32
        self.exceptions = []

        def on_exc(dw_type, uid, handle, user):
            self.exceptions.append((time.monotonic(), hex(dw_type), uid))

        self._cb = EXC_CB(on_exc)
        lib.NET_DVR_SetExceptionCallBack_V30(0, None, self._cb, None)

    def login(self, port, user, pwd):
        li = USER_LOGIN_INFO()
        li.sDeviceAddress = b"127.0.0.1"
        li.wPort = port
        li.sUserName = user.encode()
        li.sPassword = pwd.encode()
        li.byLoginMode = 1
        di = DEVICEINFO_V40()
        t0 = time.monotonic()
        uid = self.lib.NET_DVR_Login_V40(C.byref(li), C.byref(di))
        dt = time.monotonic() - t0
        err = self.lib.NET_DVR_GetLastError() if uid < 0 else 0
        return uid, err, di, dt

    def heartbeat(self, uid):
        ok = self.lib.NET_DVR_RemoteControl(uid, 20005, None, 0)
        return bool(ok), (0 if ok else self.lib.NET_DVR_GetLastError())

    def logout(self, uid):
        ok = self.lib.NET_DVR_Logout(uid)
        return bool(ok), (0 if ok else self.lib.NET_DVR_GetLastError())


class Simcam:
    def __init__(self, exe, args):
        self.p = subprocess.Popen([exe] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.ready = json.loads(self.p.stdout.readline())
        assert self.ready.get("ready"), self.ready

    def port(self, i):
        return self.ready["ports"][i]

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        while True:
            r = json.loads(self.p.stdout.readline())
            if "cmd" in r:
                return r

    def stats(self, i):
        return self.cmd(f"stats {i}")["stats"][0]

    def close(self):
        try:
            self.cmd("quit")
        except Exception:
            pass
        self.p.wait(timeout=10)


FAILS = 0


def check(name, cond, detail=""):
    global FAILS
    print(("PASS " if cond else "FAIL ") + name + (f"  [{detail}]" if detail else ""), flush=True)
    if not cond:
        FAILS += 1


def scenario_login(sdk, sim):
    port = sim.port(0)
    uid, err, di, dt = sdk.login(port, "admin", "hik12345")
    check("login ok", uid >= 0, f"uid={uid} err={err} {dt*1000:.0f} ms serial={di.sSerialNumber!r}")
    v = bytes(di.v30rest)
    print(f"      V30: alarmIn={v[0]} alarmOut={v[1]} disk={v[2]} dvrType={v[3]} chanNum={v[4]} startChan={v[5]} "
          f"audioChan={v[6]} ipChanNum={v[7]} zeroChan={v[8]} wDevType={v[14] | v[15] << 8} startDChan={v[18]}")
    check("serial from deviceInfo", di.sSerialNumber.startswith(b"DS-2CD2143G2-I"), repr(di.sSerialNumber))
    times = []
    for _ in range(5):
        u, e, _, d = sdk.login(port, "admin", "hik12345")
        times.append(d * 1000)
        sdk.logout(u)
    check("login latency (5 more logins)", max(times) < 1000, " ".join(f"{t:.0f}ms" for t in times))
    ok, e = sdk.heartbeat(uid)
    s = sim.stats(0)
    check("heartbeat via RemoteControl(20005)", ok and s["heartbeats_ok"] >= 1, f"err={e} hb={s['heartbeats_ok']}")
    ok, e = sdk.logout(uid)
    s = sim.stats(0)
    check("logout", ok and s["logouts"] >= 1 and s["sessions"] == 0, f"err={e} logouts={s['logouts']} sessions={s['sessions']}")
    return uid


def scenario_power(sdk, sim):
    port = sim.port(1)
    uid, err, _, _ = sdk.login(port, "admin", "hik12345")
    check("power: login", uid >= 0, f"err={err}")
    sim.cmd("off 1")
    ok, e = sdk.heartbeat(uid)
    check("power: heartbeat after off -> error 7", not ok and e == 7, f"ok={ok} err={e}")
    u2, e2, _, _ = sdk.login(port, "admin", "hik12345")
    check("power: login while off -> error 7", u2 < 0 and e2 == 7, f"err={e2}")
    sim.cmd("on 1")
    ok, e = sdk.heartbeat(uid)
    s = sim.stats(1)
    # A rebooted camera forgot the session: the heartbeat gets 401.
    check("power: heartbeat after reboot gets 401 (session forgotten)", s["heartbeats_rejected"] >= 1,
          f"ok={ok} err={e} hb_rejected={s['heartbeats_rejected']} boot={s['boot_id']}")
    time.sleep(1)
    s = sim.stats(1)
    print(f"      after 1 s: logins_ok={s['logins_ok']} sessions={s['sessions']} exceptions={sdk.exceptions[-5:]}")
    sdk.logout(uid)


def scenario_lockout(sdk, sim):
    port = sim.port(2)
    for n in range(1, 8):
        uid, err, di, _ = sdk.login(port, "admin", "wrong")
        if n < 7:
            check(f"lockout: wrong #{n} -> error 1, retry {7 - n}",
                  uid < 0 and err == 1 and di.bySupportLock == 1 and di.byRetryLoginTime == 7 - n,
                  f"err={err} lock={di.bySupportLock} retry={di.byRetryLoginTime}")
        else:
            check("lockout: wrong #7 -> error 153",
                  uid < 0 and err == 153 and di.bySupportLock == 1 and di.dwSurplusLockTime == 1800,
                  f"err={err} lock={di.bySupportLock} surplus={di.dwSurplusLockTime}")
    uid, err, di, _ = sdk.login(port, "admin", "hik12345")
    check("lockout: right password while locked -> 153 (lock renewed)",
          uid < 0 and err == 153 and di.dwSurplusLockTime == 1800, f"err={err} surplus={di.dwSurplusLockTime}")
    s = sim.stats(2)
    check("lockout: counters", s["logins_bad"] == 7 and s["logins_locked"] == 1, str(s))
    sim.cmd("unlock 2")
    uid, err, _, _ = sdk.login(port, "admin", "hik12345")
    check("lockout: login after unlock", uid >= 0, f"err={err}")
    sdk.logout(uid)


def scenario_limit(sdk, sim):
    port = sim.port(3)
    sim.cmd("limit 3 1")
    u1, e1, _, _ = sdk.login(port, "admin", "hik12345")
    u2, e2, _, _ = sdk.login(port, "admin", "hik12345")
    # No HTTP reply makes SDK 6.1.9.48 report 5/28/52 in ISAPI mode; 503 gives 24 (busy).
    check("limit: second login refused with error 24 (device busy)", u1 >= 0 and u2 < 0 and e2 == 24,
          f"first={u1}/{e1} second={u2}/{e2}")
    sdk.logout(u1)
    sim.cmd("limit 3 none")


def scenario_relogin(sdk, sim):
    """Camera drops sessions (kick): the SDK's next heartbeat gets 401 and it re-logs in."""
    port = sim.port(4)
    uid, err, _, _ = sdk.login(port, "admin", "hik12345")
    sim.cmd("kick 4")
    before = len(sdk.exceptions)
    ok, e = sdk.heartbeat(uid)
    time.sleep(2)
    s = sim.stats(4)
    check("relogin: after 401 heartbeat the SDK logs in again", s["logins_ok"] >= 2,
          f"hb ok={ok} err={e} logins_ok={s['logins_ok']} exc={sdk.exceptions[before:]}")
    sdk.logout(uid)


def scenario_faults(sdk, sim):
    """What the SDK reports for each camera fault (documented in README.md)."""
    port = sim.port(4)
    sim.cmd("freeze 4")
    t0 = time.monotonic()
    uid, err, _, _ = sdk.login(port, "admin", "hik12345")
    dt = time.monotonic() - t0
    check("faults: login to a frozen camera -> error 10 (receive timeout)", uid < 0 and err == 10,
          f"err={err} after {dt:.1f} s")
    sim.cmd("thaw 4")
    sim.cmd("ace 4 on")
    uid, err, _, _ = sdk.login(port, "admin", "hik12345")
    # 73 (socket closed) or 9 (receive failed), depending on when the FIN is seen.
    check("faults: login to accept-then-close -> error 73 or 9", uid < 0 and err in (9, 73),
          f"err={err}")
    sim.cmd("ace 4 off")
    sim.cmd("slow 4 300")
    uid, err, _, dt = sdk.login(port, "admin", "hik12345")
    check("faults: slow 300 ms -> login still succeeds, slower", uid >= 0, f"err={err} {dt * 1000:.0f} ms")
    sim.cmd("slow 4 0")
    sim.cmd("off 4")
    ok, e = sdk.heartbeat(uid)
    check("faults: heartbeat with camera off -> error 7", not ok and e == 7, f"err={e}")
    sim.cmd("on 4 1500")
    u2, e2, _, _ = sdk.login(port, "admin", "hik12345")
    check("faults: login during boot delay -> error 7", u2 < 0 and e2 == 7, f"err={e2}")
    time.sleep(2)
    u3, e3, _, _ = sdk.login(port, "admin", "hik12345")
    check("faults: login after boot -> ok", u3 >= 0, f"err={e3}")
    sim.cmd("passwd 4 other")
    ok, e = sdk.heartbeat(u3)
    check("faults: password change keeps the session (heartbeat ok)", ok, f"err={e}")
    u4, e4, di, _ = sdk.login(port, "admin", "hik12345")
    check("faults: old password after change -> error 1", u4 < 0 and e4 == 1, f"err={e4} retry={di.byRetryLoginTime}")
    sim.cmd("unlock 4")
    for u in (uid, u3):
        sdk.logout(u)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdk", default=os.environ.get("HIKWATCH_TEST_SDK", os.path.join(ROOT, "vendor/hcnetsdk-linux64")))
    ap.add_argument("--simcam", default=os.path.join(ROOT, "target/debug/simcam"))
    ap.add_argument("--scenario", default="all")
    ap.add_argument("--log", default="")
    ap.add_argument("--events", action="store_true", help="print simcam's event log at the end")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.sdk, "libhcnetsdk.so")):
        sys.exit(f"no SDK at {a.sdk}: run scripts/fetch-sdk.sh")
    sim = Simcam(a.simcam, ["--cameras", "5"])
    sdk = Sdk(a.sdk, a.log)
    try:
        for name, fn in [("login", scenario_login), ("lockout", scenario_lockout), ("power", scenario_power),
                         ("limit", scenario_limit), ("relogin", scenario_relogin), ("faults", scenario_faults)]:
            if a.scenario in ("all", name):
                fn(sdk, sim)
        if a.events:
            for e in sim.cmd("events")["events"]:
                print("      event", json.dumps(e))
    finally:
        sim.close()
    print(f"{FAILS} failed", flush=True)
    sys.exit(FAILS)


if __name__ == "__main__":
    main()
