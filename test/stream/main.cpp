#define BOOST_TEST_MODULE pixtream stream
#include <boost/test/unit_test.hpp>
