/*
 * bcryptprimitives.dll for Wine 8: only `ProcessPrng`, over advapi32's RtlGenRandom.
 *
 * Rust's std (1.78 and later) imports `ProcessPrng` from bcryptprimitives.dll for its
 * random seeds (HashMap keys); Debian's Wine 8 has no such DLL, so every Rust test
 * binary exits with status 53 ("Library bcryptprimitives.dll not found") before main.
 * `.ci/wine-run` builds this file with `x86_64-w64-mingw32-gcc -shared` into the Wine
 * prefix's system32. Not shipped, not used outside the CI's Wine prefix.
 */
#include <windows.h>
#include <ntsecapi.h>

/* RtlGenRandom takes a ULONG length; ProcessPrng a SIZE_T: fill in chunks. */
#define MAX_CHUNK 0x7fffffffUL

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > MAX_CHUNK ? MAX_CHUNK : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
