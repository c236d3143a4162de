/* Reads one line from standard input (the console: the vmm's stdin arrives on COM1), prints it
 * and exits with its length: console input through read(0) and stdio's buffering. */
#include <stdio.h>
#include <string.h>

int main(void)
{
	char line[256];
	if (!fgets(line, sizeof line, stdin)) {
		printf("readline: end of input\n");
		return 255;
	}
	line[strcspn(line, "\n")] = 0;
	printf("readline: got '%s'\n", line);
	return (int)strlen(line);
}
