/* A stand-in for bcryptprimitives.dll for Wine 8, which lacks it: Go 1.22 and
 * later call ProcessPrng at start and die without it. It exists only for the
 * Wine tests; a real Windows 10 or 11 has the DLL. Built with
 * x86_64-w64-mingw32-gcc -shared (test/wine/prefix.sh). */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
