// A C++ program as g++ builds it by default (dynamically linked: libstdc++.so.6, libm.so.6,
// libgcc_s.so.1 and libc.so.6 beside glibc's dynamic linker; tests/glibc.rs): iostreams, the
// containers, std::thread, and an exception thrown and caught, which unwinds through
// libgcc_s. One line per check, "cpp: WHAT: ok" or "cpp: WHAT: FAIL"; exit 0 iff all passed.
#include <atomic>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static bool all_ok = true;

static void check(const std::string &what, bool ok)
{
	std::cout << "cpp: " << what << ": " << (ok ? "ok" : "FAIL") << std::endl;
	all_ok = all_ok && ok;
}

static int thrower(int depth)
{
	if (depth == 0)
		throw std::runtime_error("deep");
	return thrower(depth - 1) + 1;
}

int main()
{
	std::map<int, std::string> squares;
	for (int i = 0; i < 10; i++)
		squares[i] = std::to_string(i * i);
	check("std::map and std::to_string", squares[9] == "81" && squares.size() == 10);

	std::ostringstream out;
	out << std::hex << 255 << ' ' << std::string(3, 'x');
	check("std::ostringstream", out.str() == "ff xxx");

	std::atomic<int> sum{0};
	std::vector<std::thread> threads;
	for (int t = 1; t <= 4; t++)
		threads.emplace_back([&sum, t] {
			for (int i = 0; i < 1000; i++)
				sum += t;
		});
	for (auto &t : threads)
		t.join();
	check("4 std::threads", sum == 10000);

	std::string caught;
	try {
		thrower(20);
	} catch (const std::exception &e) {
		caught = e.what();
	}
	check("an exception unwound through 21 frames", caught == "deep");
	return all_ok ? 0 : 1;
}
