/* Writes through a NULL pointer: a page fault in ring 3; the kernel must kill only this process
 * with SIGSEGV (shell status 139). */
#include <stdio.h>

int main(void)
{
	printf("nullptr: writing to address 0\n");
	fflush(stdout);
	*(volatile int *)0 = 1;
	printf("nullptr: still alive!\n");
	return 1;
}
