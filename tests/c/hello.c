/* An unmodified, ordinary C program: printf, then return 7. musl's startup code and printf use
 * set_tid_address, arch_prctl(ARCH_SET_FS), ioctl(TIOCGWINSZ), writev and exit_group. */
#include <stdio.h>

int main(void)
{
	printf("hello from musl\n");
	return 7;
}
