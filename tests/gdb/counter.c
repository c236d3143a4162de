/* The program tests/gdb.rs debugs in ring 3: a function to break in (main, tick), a variable to
   watch (counter), and system calls to stop at in the kernel. Built with musl-gcc -g -O0.
   With an argument "spin" it then loops forever without a system call, for Ctrl-C. */
#include <string.h>
#include <unistd.h>

volatile int counter;

static void tick(int step)
{
    counter = counter + step;
}

int main(int argc, char **argv)
{
    for (int i = 1; i <= 3; i++) {
        tick(i);
        write(1, "tick\n", 5);
    }
    if (argc > 1 && strcmp(argv[1], "spin") == 0)
        for (;;)
            counter++;
    return counter == 6 ? 0 : 1;
}
